output "function_name" {
  description = "Name of the Lambda function."
  value       = aws_lambda_function.this.function_name
}

output "function_arn" {
  description = "ARN of the Lambda function."
  value       = aws_lambda_function.this.arn
}

output "role_arn" {
  description = "ARN of the function's execution role."
  value       = aws_iam_role.this.arn
}

output "log_group_name" {
  description = "Name of the function's log group."
  value       = aws_cloudwatch_log_group.this.name
}

output "dead_letter_queue_arn" {
  description = "ARN of the dead-letter queue (async failures and the Kinesis on-failure destination)."
  value       = aws_sqs_queue.dead_letter.arn
}

output "dead_letter_queue_name" {
  description = "Name of the dead-letter queue."
  value       = aws_sqs_queue.dead_letter.name
}

output "event_source_mapping_uuids" {
  description = "UUIDs of the event source mappings, by kind and key."
  value = merge(
    { for key, mapping in aws_lambda_event_source_mapping.kinesis : "kinesis:${key}" => mapping.uuid },
    { for key, mapping in aws_lambda_event_source_mapping.sqs : "sqs:${key}" => mapping.uuid },
  )
}
