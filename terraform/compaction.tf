# The lake's compaction: a function that rewrites each table's closed partitions into few
# files (each event once), expires old snapshots and deletes the files nothing refers to,
# invoked by an EventBridge Scheduler schedule. The local runtime does not fire the
# schedule; `pipeline lake compact` runs the same code by hand.

module "lake_compactor" {
  source = "./modules/functions"

  name_prefix        = local.name
  name               = "lake-compactor"
  handler            = "functions.lake_compactor.handler.lambda_handler"
  runtime            = local.lambda_runtime.runtime
  architecture       = local.lambda_runtime.architecture
  package            = local.lambda_package
  layers             = local.lake_writer_layers
  memory_size        = 2048
  timeout            = 900
  kms_key_arn        = aws_kms_key.this.arn
  log_retention_days = var.log_retention_days
  alarm_topic_arn    = module.alerts.topic_arns["operations"]
  # One run at a time: two would only make each other's rewrites lose their races.
  reserved_concurrent_executions = 1

  environment = {
    LAKE_BUCKET                  = module.storage.bucket_ids["lake"]
    GLUE_DATABASE                = module.catalog.database_name
    SNAPSHOT_RETENTION_DAYS      = tostring(var.lake_compaction.snapshot_retention_days)
    SNAPSHOTS_KEPT               = tostring(var.lake_compaction.snapshots_kept)
    ORPHAN_MIN_AGE_HOURS         = tostring(var.lake_compaction.orphan_min_age_hours)
    POWERTOOLS_SERVICE_NAME      = "lake-compactor"
    POWERTOOLS_METRICS_NAMESPACE = "Pipelines"
  }

  # Iceberg, as the lake writer: table metadata in Glue; the tables' files read (partitions,
  # manifests), written (rewrites, metadata), listed and deleted (orphans). No quarantine:
  # it consumes no events.
  permissions = {
    glue_tables = [module.catalog.database_arn]
    s3_read     = ["${module.storage.bucket_arns["lake"]}/*"]
    s3_write    = ["${module.storage.bucket_arns["lake"]}/*"]
    s3_delete   = ["${module.storage.bucket_arns["lake"]}/*"]
    s3_list     = [module.storage.bucket_arns["lake"]]
  }
}

resource "aws_scheduler_schedule" "lake_compaction" {
  name                         = "${local.name}-lake-compaction"
  description                  = "Compacts the lake's closed partitions and expires their old snapshots."
  schedule_expression          = var.lake_compaction.schedule
  schedule_expression_timezone = "UTC"
  state                        = var.lake_compaction.enabled ? "ENABLED" : "DISABLED"
  kms_key_arn                  = aws_kms_key.this.arn

  flexible_time_window {
    mode = "OFF"
  }

  target {
    arn      = module.lake_compactor.function_arn
    role_arn = aws_iam_role.scheduler.arn
    input    = jsonencode({})

    # A run is idempotent: a retry compacts what the failed one left.
    retry_policy {
      maximum_retry_attempts       = 2
      maximum_event_age_in_seconds = 3600
    }

    dead_letter_config {
      arn = module.lake_compactor.dead_letter_queue_arn
    }
  }
}

data "aws_iam_policy_document" "scheduler_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["scheduler.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

data "aws_iam_policy_document" "scheduler" {
  statement {
    sid       = "InvokeLakeCompactor"
    actions   = ["lambda:InvokeFunction"]
    resources = [module.lake_compactor.function_arn]
  }

  # Invocations the scheduler gives up on go to the function's dead-letter queue (and its
  # alarm); the queue and the schedule's input are encrypted with the workspace key.
  statement {
    sid       = "SendToDeadLetterQueue"
    actions   = ["sqs:SendMessage"]
    resources = [module.lake_compactor.dead_letter_queue_arn]
  }

  statement {
    sid       = "UseWorkspaceKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.this.arn]
  }
}

resource "aws_iam_role" "scheduler" {
  name               = "${local.name}-scheduler"
  assume_role_policy = data.aws_iam_policy_document.scheduler_assume.json
}

resource "aws_iam_role_policy" "scheduler" {
  name   = "least-privilege"
  role   = aws_iam_role.scheduler.id
  policy = data.aws_iam_policy_document.scheduler.json
}
