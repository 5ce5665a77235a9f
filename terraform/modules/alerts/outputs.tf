output "topic_arns" {
  description = "Topic ARNs by key (anomaly_alerts, fraud_alerts, user_notifications, operations)."
  value       = { for key, topic in aws_sns_topic.this : key => topic.arn }
}

output "topic_names" {
  description = "Topic names by key."
  value       = { for key, topic in aws_sns_topic.this : key => topic.name }
}
