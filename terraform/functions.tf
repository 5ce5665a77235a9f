# The consumers: Lambda functions with their event source mappings, all from one
# deployment package (`make package`) uploaded to the artifacts bucket, so that the
# functions are created in parallel.

resource "aws_s3_object" "lambda_package" {
  bucket      = module.storage.bucket_ids["artifacts"]
  key         = "lambda/pipelines-${filesha256(var.lambda_package)}.zip"
  source      = var.lambda_package
  source_hash = filemd5(var.lambda_package)
  kms_key_id  = aws_kms_key.this.arn
}

# The lake writer's own layer (`make package`: pyarrow, pyiceberg and what they import),
# through S3 like the package. Not on a local endpoint: the local runtime runs the handlers
# in-process from the project's environment, so the emulator would only hold 40 MB that
# nothing loads, and every `pipeline up` would first have to build it.
resource "aws_s3_object" "lake_layer" {
  count = var.emulated ? 0 : 1

  bucket      = module.storage.bucket_ids["artifacts"]
  key         = "lambda/lake-layer-${filesha256(var.lake_layer)}.zip"
  source      = var.lake_layer
  source_hash = filemd5(var.lake_layer)
  kms_key_id  = aws_kms_key.this.arn
}

resource "aws_lambda_layer_version" "lake" {
  count = var.emulated ? 0 : 1

  layer_name               = "${local.name}-lake"
  description              = "pyarrow and pyiceberg for the lake writer (make package)"
  s3_bucket                = aws_s3_object.lake_layer[0].bucket
  s3_key                   = aws_s3_object.lake_layer[0].key
  source_code_hash         = filebase64sha256(var.lake_layer)
  compatible_runtimes      = [local.lambda_runtime.runtime]
  compatible_architectures = [local.lambda_runtime.architecture]
}

locals {
  # The Lambda runtime, declared once: `make package` builds the dependencies for it too.
  lambda_runtime = jsondecode(file("${path.module}/lambda.json"))
  lambda_package = {
    s3_bucket        = aws_s3_object.lambda_package.bucket
    s3_key           = aws_s3_object.lambda_package.key
    source_code_hash = filebase64sha256(var.lambda_package)
  }
  # How the per-event consumers (projector, alerter) read the stream: small batches, split on
  # a function error to isolate a bad record, retried for up to the stream's week of retention.
  event_stream_source = {
    stream_arn                         = module.stream.stream_arn
    starting_position                  = "TRIM_HORIZON"
    batch_size                         = 100
    maximum_batching_window_in_seconds = 1
    bisect_batch_on_function_error     = true
    maximum_retry_attempts             = 10
    maximum_record_age_in_seconds      = 604800
  }
  # How the consumers that write objects named after their batch (lake writer, archiver) read
  # the stream: large batches, for fewer, larger files; a failed batch is retried whole and
  # never split, since its object keys come from its sequence range and a retry must see the
  # same range.
  object_stream_source = merge(local.event_stream_source, {
    batch_size                         = 1000
    maximum_batching_window_in_seconds = 10
    bisect_batch_on_function_error     = false
  })
  # Extra layers first, the lake layer last: where they overlap, the files the writer was
  # tested with (tests/unit/test_packaging.py) win.
  lake_writer_layers = concat(var.lake_writer_layers, aws_lambda_layer_version.lake[*].arn)
  # Key prefix of the archive's partitions in the archive bucket.
  archive_prefix = "events"
  # Where each projection lives, as the projector reads it (pipelines/consumers/config.py).
  projector_tables = ["users", "user_activities", "system_metrics", "transactions", "image_analysis"]
  # The table each projection is in: Terraform's, or a promoted rebuild's (replay.tf).
  projection_tables = merge(module.projections.table_names, var.projection_tables)
}

module "projector" {
  source = "./modules/functions"

  name_prefix        = local.name
  name               = "projector"
  handler            = "functions.projector.handler.lambda_handler"
  runtime            = local.lambda_runtime.runtime
  architecture       = local.lambda_runtime.architecture
  package            = local.lambda_package
  kms_key_arn        = aws_kms_key.this.arn
  log_retention_days = var.log_retention_days
  alarm_topic_arn    = module.alerts.topic_arns["operations"]

  environment = {
    USERS_TABLE                  = local.projection_tables["users"]
    USER_ACTIVITIES_TABLE        = local.projection_tables["user_activities"]
    SYSTEM_METRICS_TABLE         = local.projection_tables["system_metrics"]
    TRANSACTIONS_TABLE           = local.projection_tables["transactions"]
    IMAGE_ANALYSIS_TABLE         = local.projection_tables["image_analysis"]
    QUARANTINE_BUCKET            = module.storage.bucket_ids["quarantine"]
    TTL_ATTRIBUTE                = module.projections.ttl_attribute
    FACT_TTL_DAYS                = tostring(var.fact_ttl_days)
    POWERTOOLS_SERVICE_NAME      = "projector"
    POWERTOOLS_METRICS_NAMESPACE = "Pipelines"
  }

  permissions = {
    # Terraform's tables, and their rebuilt shadows (<table>-rp-<id>), which a promotion
    # switches the projector to without an IAM change.
    dynamodb_write = flatten([
      for table in local.projector_tables :
      [module.projections.table_arns[table], "${module.projections.table_arns[table]}-rp-*"]
    ])
    s3_write = ["${module.storage.bucket_arns["quarantine"]}/projector/*"]
  }

  kinesis_event_sources = { events = local.event_stream_source }
}

locals {
  alerter_tables = ["alerts", "metric_baselines", "recent_transactions"]
}

module "alerter" {
  source = "./modules/functions"

  name_prefix        = local.name
  name               = "alerter"
  handler            = "functions.alerter.handler.lambda_handler"
  runtime            = local.lambda_runtime.runtime
  architecture       = local.lambda_runtime.architecture
  package            = local.lambda_package
  kms_key_arn        = aws_kms_key.this.arn
  log_retention_days = var.log_retention_days
  alarm_topic_arn    = module.alerts.topic_arns["operations"]

  environment = {
    ALERTS_TABLE                 = module.projections.table_names["alerts"]
    METRIC_BASELINES_TABLE       = module.projections.table_names["metric_baselines"]
    RECENT_TRANSACTIONS_TABLE    = module.projections.table_names["recent_transactions"]
    ANOMALY_TOPIC_ARN            = module.alerts.topic_arns["anomaly_alerts"]
    FRAUD_TOPIC_ARN              = module.alerts.topic_arns["fraud_alerts"]
    QUARANTINE_BUCKET            = module.storage.bucket_ids["quarantine"]
    TTL_ATTRIBUTE                = module.projections.ttl_attribute
    POWERTOOLS_SERVICE_NAME      = "alerter"
    POWERTOOLS_METRICS_NAMESPACE = "Pipelines"
  }

  permissions = {
    dynamodb_read  = [for table in local.alerter_tables : module.projections.table_arns[table]]
    dynamodb_write = [for table in local.alerter_tables : module.projections.table_arns[table]]
    sns_publish    = [module.alerts.topic_arns["anomaly_alerts"], module.alerts.topic_arns["fraud_alerts"]]
    s3_write       = ["${module.storage.bucket_arns["quarantine"]}/alerter/*"]
  }

  kinesis_event_sources = { events = local.event_stream_source }
}

module "lake_writer" {
  source = "./modules/functions"

  name_prefix        = local.name
  name               = "lake-writer"
  handler            = "functions.lake_writer.handler.lambda_handler"
  runtime            = local.lambda_runtime.runtime
  architecture       = local.lambda_runtime.architecture
  package            = local.lambda_package
  layers             = local.lake_writer_layers
  memory_size        = 1024
  timeout            = 120
  kms_key_arn        = aws_kms_key.this.arn
  log_retention_days = var.log_retention_days
  alarm_topic_arn    = module.alerts.topic_arns["operations"]

  environment = {
    LAKE_BUCKET                  = module.storage.bucket_ids["lake"]
    GLUE_DATABASE                = module.catalog.database_name
    QUARANTINE_BUCKET            = module.storage.bucket_ids["quarantine"]
    LAKE_COMPRESSION             = "zstd"
    POWERTOOLS_SERVICE_NAME      = "lake-writer"
    POWERTOOLS_METRICS_NAMESPACE = "Pipelines"
  }

  # Iceberg: the writer reads and commits table metadata in Glue, reads the table's files
  # (the duplicate lookup, metadata and manifests), writes new ones, and deletes the files
  # of a commit that lost its race.
  permissions = {
    glue_tables = [module.catalog.database_arn]
    s3_read     = ["${module.storage.bucket_arns["lake"]}/*"]
    s3_write = [
      "${module.storage.bucket_arns["lake"]}/*",
      "${module.storage.bucket_arns["quarantine"]}/lake-writer/*",
    ]
    s3_delete = ["${module.storage.bucket_arns["lake"]}/*"]
    s3_list   = [module.storage.bucket_arns["lake"]]
  }

  kinesis_event_sources = { events = local.object_stream_source }
}

# The archive is independent of every other sink: its own function and mapping, so that no
# failure of the lake, the projections or the alerts keeps a record out of it.
module "archiver" {
  source = "./modules/functions"

  name_prefix        = local.name
  name               = "archiver"
  handler            = "functions.archiver.handler.lambda_handler"
  runtime            = local.lambda_runtime.runtime
  architecture       = local.lambda_runtime.architecture
  package            = local.lambda_package
  kms_key_arn        = aws_kms_key.this.arn
  log_retention_days = var.log_retention_days
  alarm_topic_arn    = module.alerts.topic_arns["operations"]

  environment = {
    ARCHIVE_BUCKET               = module.storage.bucket_ids["archive"]
    ARCHIVE_PREFIX               = local.archive_prefix
    QUARANTINE_BUCKET            = module.storage.bucket_ids["quarantine"]
    POWERTOOLS_SERVICE_NAME      = "archiver"
    POWERTOOLS_METRICS_NAMESPACE = "Pipelines"
  }

  permissions = {
    s3_write = [
      "${module.storage.bucket_arns["archive"]}/${local.archive_prefix}/*",
      "${module.storage.bucket_arns["quarantine"]}/archiver/*",
    ]
  }

  kinesis_event_sources = { events = local.object_stream_source }
}
