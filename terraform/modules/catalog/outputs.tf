output "database_name" {
  description = "Glue database of the lake."
  value       = aws_glue_catalog_database.this.name
}

output "database_arn" {
  description = "ARN of the Glue database of the lake."
  value       = aws_glue_catalog_database.this.arn
}

output "tables" {
  description = "Lake table of each event type: Iceberg table name in the database and its S3 location."
  value = {
    for event_type, table in local.tables : event_type => {
      table_name = table.table_name
      location   = "s3://${var.lake_bucket}/${table.table_name}"
    }
  }
}

output "workgroup_name" {
  description = "Athena workgroup for lake queries."
  value       = aws_athena_workgroup.this.name
}

output "daily_analytics_query_id" {
  description = "Id of the named query with the daily analytics."
  value       = aws_athena_named_query.daily_analytics.id
}
