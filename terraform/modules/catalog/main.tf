locals {
  # Generated from the Avro schemas by `python -m pipelines_local.catalog`; a unit test keeps it current.
  # Each table's partition_range_start is the pipeline's event time floor
  # (pipelines/event_time.py): the decode path refuses an event dated earlier.
  tables        = jsondecode(file("${path.module}/tables.json"))
  database_name = replace(var.name_prefix, "-", "_")
}

resource "aws_glue_catalog_database" "this" {
  name        = local.database_name
  description = "Event lake of ${var.name_prefix}: one Parquet table per event type."
}

resource "aws_glue_catalog_table" "this" {
  for_each = local.tables

  name          = each.value.table_name
  database_name = aws_glue_catalog_database.this.name
  description   = "${each.key} events, partitioned by event date."
  table_type    = "EXTERNAL_TABLE"

  parameters = {
    "EXTERNAL"                    = "TRUE"
    "classification"              = "parquet"
    "parquet.compression"         = "ZSTD"
    "projection.enabled"          = "true"
    "projection.dt.type"          = "date"
    "projection.dt.format"        = each.value.partition_format
    "projection.dt.range"         = "${each.value.partition_range_start},NOW"
    "projection.dt.interval"      = "1"
    "projection.dt.interval.unit" = "DAYS"
    "storage.location.template"   = "s3://${var.lake_bucket}/${each.value.table_name}/dt=$${dt}/"
  }

  dynamic "partition_keys" {
    for_each = each.value.partition_keys
    content {
      name = partition_keys.value.name
      type = partition_keys.value.type
    }
  }

  storage_descriptor {
    location      = "s3://${var.lake_bucket}/${each.value.table_name}/"
    input_format  = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
    output_format = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"

    ser_de_info {
      serialization_library = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
      parameters = {
        "serialization.format" = "1"
      }
    }

    dynamic "columns" {
      for_each = each.value.columns
      content {
        name = columns.value.name
        type = columns.value.type
      }
    }
  }
}

resource "aws_athena_workgroup" "this" {
  name          = var.name_prefix
  description   = "Queries over the ${var.name_prefix} event lake."
  force_destroy = var.force_destroy

  configuration {
    enforce_workgroup_configuration    = true
    publish_cloudwatch_metrics_enabled = true
    bytes_scanned_cutoff_per_query     = var.bytes_scanned_cutoff

    result_configuration {
      output_location = "s3://${var.results_bucket}/results/"

      encryption_configuration {
        encryption_option = "SSE_KMS"
        kms_key_arn       = var.kms_key_arn
      }
    }
  }
}

resource "aws_athena_named_query" "daily_analytics" {
  name        = "${var.name_prefix}-daily-analytics"
  description = "Daily user activity over the last seven days: events, unique users, average session length."
  workgroup   = aws_athena_workgroup.this.id
  database    = aws_glue_catalog_database.this.name
  query       = templatefile("${path.module}/daily_analytics.sql", { table = local.tables["UserActivityRecorded"].table_name })
}
