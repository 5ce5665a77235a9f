output "name_prefix" {
  description = "Prefix of every resource name: <project>-<workspace>."
  value       = local.name
}

output "workspace" {
  description = "Terraform workspace (the environment)."
  value       = terraform.workspace
}

output "region" {
  description = "Region the stack is deployed in."
  value       = local.region
}

output "lake_layer_arn" {
  description = "Version ARN of the lake writer's layer (null on a local endpoint, which has none)."
  value       = one(aws_lambda_layer_version.lake[*].arn)
}

output "kms_key_arn" {
  description = "Customer-managed key that encrypts the workspace's data."
  value       = aws_kms_key.this.arn
}

output "stream_name" {
  description = "Kinesis stream carrying the Avro events."
  value       = module.stream.stream_name
}

output "stream_arn" {
  description = "ARN of the event stream."
  value       = module.stream.stream_arn
}

output "bucket_names" {
  description = "Bucket names by purpose: lake, archive, quarantine, uploads, athena_results, artifacts."
  value       = module.storage.bucket_ids
}

output "uploads_prefix" {
  description = "Key prefix in the uploads bucket whose new objects notify the uploads queue."
  value       = module.storage.uploads_prefix
}

output "uploads_queue_url" {
  description = "Queue the image labeler consumes (S3 notifications for uploads)."
  value       = module.storage.uploads_queue_url
}

output "table_names" {
  description = "DynamoDB table names by projection (a promoted rebuild's where there is one)."
  value       = local.projection_tables
}

output "function_names" {
  description = "Lambda function names by their name in Terraform (projector, alerter, lake-writer, lake-compactor, archiver)."
  value = {
    projector        = module.projector.function_name
    alerter          = module.alerter.function_name
    "lake-writer"    = module.lake_writer.function_name
    "lake-compactor" = module.lake_compactor.function_name
    archiver         = module.archiver.function_name
  }
}

output "lake_compaction_schedule" {
  description = "EventBridge Scheduler schedule that invokes the lake compactor, and its expression."
  value = {
    name       = aws_scheduler_schedule.lake_compaction.name
    expression = aws_scheduler_schedule.lake_compaction.schedule_expression
    state      = aws_scheduler_schedule.lake_compaction.state
  }
}

output "archive_prefix" {
  description = "Key prefix of the archive's partitions in the archive bucket: <prefix>/dt=yyyy-MM-dd/hour=HH/<shard>-<first>-<last>.avro."
  value       = local.archive_prefix
}

output "glue_database" {
  description = "Glue database of the lake."
  value       = module.catalog.database_name
}

output "lake_tables" {
  description = "Glue table and S3 location of each event type's lake dataset."
  value       = module.catalog.tables
}

output "athena_workgroup" {
  description = "Athena workgroup for lake queries."
  value       = module.catalog.workgroup_name
}

output "topic_arns" {
  description = "SNS topic ARNs: anomaly_alerts, fraud_alerts, user_notifications, operations."
  value       = module.alerts.topic_arns
}

output "dashboard_name" {
  description = "CloudWatch dashboard of the pipeline."
  value       = module.observability.dashboard_name
}

output "replay_role_arn" {
  description = "Role `pipeline replay` and `pipeline quarantine` assume (--role-arn, or a profile's role_arn); see docs/replay.md."
  value       = aws_iam_role.replay.arn
}
