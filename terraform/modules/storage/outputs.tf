output "bucket_ids" {
  description = "Bucket names by purpose (lake, archive, quarantine, uploads, athena_results, artifacts)."
  value       = { for key, bucket in aws_s3_bucket.this : key => bucket.id }
}

output "bucket_arns" {
  description = "Bucket ARNs by purpose."
  value       = { for key, bucket in aws_s3_bucket.this : key => bucket.arn }
}

output "uploads_prefix" {
  description = "Key prefix whose new objects notify the uploads queue."
  value       = var.uploads_prefix
}

output "uploads_queue_url" {
  description = "URL of the queue that receives upload notifications."
  value       = aws_sqs_queue.uploads.url
}

output "uploads_queue_arn" {
  description = "ARN of the queue that receives upload notifications."
  value       = aws_sqs_queue.uploads.arn
}

output "uploads_dead_letter_queue_name" {
  description = "Name of the uploads queue's dead-letter queue."
  value       = aws_sqs_queue.uploads_dead_letter.name
}

output "uploads_dead_letter_queue_arn" {
  description = "ARN of the uploads queue's dead-letter queue."
  value       = aws_sqs_queue.uploads_dead_letter.arn
}
