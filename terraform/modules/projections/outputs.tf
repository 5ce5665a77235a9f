output "table_names" {
  description = "Table names by projection (users, user_activities, system_metrics, transactions, image_analysis, alerts, metric_baselines, recent_transactions)."
  value       = { for key, table in aws_dynamodb_table.this : key => table.name }
}

output "table_arns" {
  description = "Table ARNs by projection."
  value       = { for key, table in aws_dynamodb_table.this : key => table.arn }
}

output "ttl_attribute" {
  description = "Attribute holding the expiry time on tables with a time to live."
  value       = var.ttl_attribute
}
