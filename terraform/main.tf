data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}

locals {
  # Every name derives from the project and the workspace, so workspaces live side by side.
  name       = "${var.project}-${terraform.workspace}"
  account_id = data.aws_caller_identity.current.account_id
  region     = data.aws_region.current.name
  partition  = data.aws_partition.current.partition

  tags = {
    Project     = var.project
    Environment = terraform.workspace
    ManagedBy   = "terraform"
  }
}

module "stream" {
  source = "./modules/stream"

  name            = "${local.name}-events"
  kms_key_arn     = aws_kms_key.this.arn
  on_demand       = var.stream.on_demand
  shard_count     = var.stream.shard_count
  retention_hours = var.stream.retention_hours
}

module "storage" {
  source = "./modules/storage"

  name_prefix    = local.name
  name_suffix    = local.account_id
  kms_key_arn    = aws_kms_key.this.arn
  force_destroy  = !var.deletion_protection
  lifecycle_days = var.lifecycle_days
}

module "projections" {
  source = "./modules/projections"

  name_prefix         = local.name
  kms_key_arn         = aws_kms_key.this.arn
  deletion_protection = var.deletion_protection
}

module "catalog" {
  source = "./modules/catalog"

  name_prefix          = local.name
  lake_bucket          = module.storage.bucket_ids["lake"]
  results_bucket       = module.storage.bucket_ids["athena_results"]
  kms_key_arn          = aws_kms_key.this.arn
  bytes_scanned_cutoff = var.athena_bytes_scanned_cutoff
  force_destroy        = !var.deletion_protection
}

module "alerts" {
  source = "./modules/alerts"

  name_prefix         = local.name
  kms_key_arn         = aws_kms_key.this.arn
  email_subscriptions = var.alert_email_subscriptions
}

module "observability" {
  source = "./modules/observability"

  name_prefix                      = local.name
  region                           = local.region
  stream_name                      = module.stream.stream_name
  iterator_age_alarm_ms            = var.iterator_age_alarm_ms
  alarm_topic_arn                  = module.alerts.topic_arns["operations"]
  function_names                   = [module.projector.function_name, module.alerter.function_name, module.lake_writer.function_name, module.archiver.function_name]
  dead_letter_queue_names          = [module.storage.uploads_dead_letter_queue_name]
  function_dead_letter_queue_names = [module.projector.dead_letter_queue_name, module.alerter.dead_letter_queue_name, module.lake_writer.dead_letter_queue_name, module.archiver.dead_letter_queue_name]
}
