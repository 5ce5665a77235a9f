locals {
  # Generated from the Avro schemas by `python -m pipelines_local.catalog`; a unit test keeps it current.
  tables        = jsondecode(file("${path.module}/tables.json"))
  database_name = replace(var.name_prefix, "-", "_")
}

resource "aws_glue_catalog_database" "this" {
  name        = local.database_name
  description = "Event lake of ${var.name_prefix}: one Apache Iceberg table per event type."
}

# The tables are Apache Iceberg tables, and Iceberg's metadata is the writer's: the lake
# writer creates each one on first use (`pipeline up` creates them all after apply) with
# pyiceberg, at s3://<lake bucket>/<table>. Terraform owns the database, the bucket, the
# permissions and the queries; a table it declared would be rolled back to the metadata it
# recorded by the next apply. Iceberg needs no partition projection: Athena prunes by the
# table's own partition spec (identity on `dt`).
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
