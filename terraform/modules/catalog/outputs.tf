output "database_name" {
  description = "Glue database of the lake."
  value       = aws_glue_catalog_database.this.name
}

output "tables" {
  description = "Lake table of each event type: Glue table name and S3 location (prefix of its dt= partitions)."
  value = {
    for event_type, table in aws_glue_catalog_table.this : event_type => {
      table_name = table.name
      location   = table.storage_descriptor[0].location
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
