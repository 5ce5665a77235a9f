locals {
  # Purpose of each bucket, and its lifecycle beyond the rules every bucket gets
  # (abort incomplete uploads, expire noncurrent versions).
  buckets = {
    lake = {
      transitions = [
        { days = var.lifecycle_days.lake_infrequent_access, storage_class = "STANDARD_IA" },
        { days = var.lifecycle_days.lake_glacier, storage_class = "GLACIER" },
      ]
      expiration_days = null
    }
    archive        = { transitions = [], expiration_days = null }
    quarantine     = { transitions = [], expiration_days = var.lifecycle_days.quarantine_expiration }
    uploads        = { transitions = [], expiration_days = null }
    athena_results = { transitions = [], expiration_days = var.lifecycle_days.athena_results_expiration }
    artifacts      = { transitions = [], expiration_days = null }
  }
}

resource "aws_s3_bucket" "this" {
  # checkov:skip=CKV_AWS_18:Object access is audited by CloudTrail data events, configured once per account rather than per workspace bucket.
  # checkov:skip=CKV_AWS_144:Cross-region replication is an account-level disaster-recovery choice (replica region, replica key), not provisioned per workspace.
  # checkov:skip=CKV2_AWS_62:Only the uploads bucket has a consumer for its events (aws_s3_bucket_notification.uploads); the other buckets are written by the pipeline itself.
  for_each = local.buckets

  bucket        = "${var.name_prefix}-${replace(each.key, "_", "-")}-${var.name_suffix}"
  force_destroy = var.force_destroy
}

resource "aws_s3_bucket_ownership_controls" "this" {
  for_each = local.buckets

  bucket = aws_s3_bucket.this[each.key].id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "this" {
  for_each = local.buckets

  bucket                  = aws_s3_bucket.this[each.key].id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "this" {
  for_each = local.buckets

  bucket = aws_s3_bucket.this[each.key].id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "this" {
  for_each = local.buckets

  bucket = aws_s3_bucket.this[each.key].id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = var.kms_key_arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "this" {
  for_each = local.buckets

  bucket = aws_s3_bucket.this[each.key].id

  rule {
    id     = "objects"
    status = "Enabled"

    filter {}

    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }

    noncurrent_version_expiration {
      noncurrent_days = var.lifecycle_days.noncurrent_expiration
    }

    dynamic "transition" {
      for_each = local.buckets[each.key].transitions
      content {
        days          = transition.value.days
        storage_class = transition.value.storage_class
      }
    }

    dynamic "expiration" {
      for_each = local.buckets[each.key].expiration_days == null ? [] : [local.buckets[each.key].expiration_days]
      content {
        days = expiration.value
      }
    }
  }
}

data "aws_iam_policy_document" "tls_only" {
  for_each = local.buckets

  statement {
    sid     = "DenyInsecureTransport"
    effect  = "Deny"
    actions = ["s3:*"]
    resources = [
      aws_s3_bucket.this[each.key].arn,
      "${aws_s3_bucket.this[each.key].arn}/*",
    ]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "this" {
  for_each = local.buckets

  bucket = aws_s3_bucket.this[each.key].id
  policy = data.aws_iam_policy_document.tls_only[each.key].json

  depends_on = [aws_s3_bucket_public_access_block.this]
}

# Uploaded images -> SQS -> image labeler. The queue policy is inline (one API call
# instead of a separate aws_sqs_queue_policy and its waiter). These queues carry only S3
# event notifications (bucket, key, size), so SQS-managed encryption is enough: S3 needs no
# grant on the customer key, and the queues do not wait for that key to exist.
resource "aws_sqs_queue" "uploads_dead_letter" {
  name                      = "${var.name_prefix}-uploads-dlq"
  message_retention_seconds = 1209600
  sqs_managed_sse_enabled   = true
}

resource "aws_sqs_queue" "uploads" {
  name                       = "${var.name_prefix}-uploads"
  visibility_timeout_seconds = var.queue_visibility_timeout_seconds
  message_retention_seconds  = 345600
  sqs_managed_sse_enabled    = true
  policy                     = data.aws_iam_policy_document.uploads_queue.json
  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.uploads_dead_letter.arn
    maxReceiveCount     = var.max_receive_count
  })
}

data "aws_region" "current" {}
data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

data "aws_iam_policy_document" "uploads_queue" {
  statement {
    sid     = "UploadsBucketNotifies"
    actions = ["sqs:SendMessage"]
    # The queue's own ARN, built from its name: the policy is part of the queue itself.
    resources = ["arn:${data.aws_partition.current.partition}:sqs:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:${var.name_prefix}-uploads"]
    principals {
      type        = "Service"
      identifiers = ["s3.amazonaws.com"]
    }
    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [aws_s3_bucket.this["uploads"].arn]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

resource "aws_s3_bucket_notification" "uploads" {
  bucket = aws_s3_bucket.this["uploads"].id

  queue {
    queue_arn     = aws_sqs_queue.uploads.arn
    events        = ["s3:ObjectCreated:*"]
    filter_prefix = var.uploads_prefix
  }
}
