locals {
  # Read models and the state the alert rules keep. Keys follow the seed article where it
  # has them; every key attribute is a string. range_key and ttl are optional.
  tables = {
    users           = { hash_key = "user_id", range_key = null, ttl = false }
    user_activities = { hash_key = "user_id", range_key = "timestamp", ttl = true }
    system_metrics  = { hash_key = "metric_id", range_key = null, ttl = true }
    transactions    = { hash_key = "transaction_id", range_key = null, ttl = false }
    image_analysis  = { hash_key = "image_key", range_key = null, ttl = false }
    alerts          = { hash_key = "alert_id", range_key = null, ttl = true }
    # Rolling baseline per metric source and metric name (anomaly rule).
    metric_baselines = { hash_key = "source", range_key = "metric_name", ttl = false }
    # Per-user window of recent transactions (fraud velocity rule); entries expire.
    recent_transactions = { hash_key = "user_id", range_key = "timestamp", ttl = true }
  }

  # Secondary indexes: a user's transactions in time order.
  indexes = {
    transactions = [{ name = "UserTransactionsIndex", hash_key = "user_id", range_key = "timestamp" }]
  }
}

resource "aws_dynamodb_table" "this" {
  for_each = local.tables

  name                        = "${var.name_prefix}-${replace(each.key, "_", "-")}"
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = each.value.hash_key
  range_key                   = each.value.range_key
  deletion_protection_enabled = var.deletion_protection

  dynamic "attribute" {
    for_each = toset(compact(concat(
      [each.value.hash_key, each.value.range_key],
      flatten([for index in lookup(local.indexes, each.key, []) : [index.hash_key, index.range_key]]),
    )))
    content {
      name = attribute.value
      type = "S"
    }
  }

  dynamic "global_secondary_index" {
    for_each = lookup(local.indexes, each.key, [])
    content {
      name            = global_secondary_index.value.name
      hash_key        = global_secondary_index.value.hash_key
      range_key       = global_secondary_index.value.range_key
      projection_type = "ALL"
    }
  }

  dynamic "ttl" {
    for_each = each.value.ttl ? [var.ttl_attribute] : []
    content {
      attribute_name = ttl.value
      enabled        = true
    }
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = var.kms_key_arn
  }
}
