# One customer-managed key per workspace encrypts the stream, buckets, tables, queues,
# topics and logs. Services that write encrypted data on our behalf get just enough of it.
resource "aws_kms_key" "this" {
  description             = "${local.name}: encryption of the event pipeline's data"
  enable_key_rotation     = true
  deletion_window_in_days = var.kms_deletion_window_days
  policy                  = data.aws_iam_policy_document.kms.json

  lifecycle {
    precondition {
      condition     = can(regex("^[a-z0-9][a-z0-9-]{0,19}$", terraform.workspace))
      error_message = "Workspace names must be 1-20 characters of lower-case letters, digits and hyphens (they become part of bucket names)."
    }
  }
}

resource "aws_kms_alias" "this" {
  name          = "alias/${local.name}"
  target_key_id = aws_kms_key.this.key_id
}

data "aws_iam_policy_document" "kms" {
  # checkov:skip=CKV_AWS_109:In a key policy "*" means this key only; the account-root statement is AWS's default that lets IAM policies grant use of the key.
  # checkov:skip=CKV_AWS_111:In a key policy "*" means this key only; service statements are limited by source account or log-group ARN conditions.
  # checkov:skip=CKV_AWS_356:A key policy cannot name its own key's ARN (it does not exist yet); "*" there means this key only.
  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }

  statement {
    sid       = "CloudWatchLogsEncryptLogGroups"
    actions   = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["logs.${local.region}.amazonaws.com"]
    }
    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:*"]
    }
  }

  statement {
    sid       = "AlarmsAndTopicsDeliverEncryptedMessages"
    actions   = ["kms:GenerateDataKey*", "kms:Decrypt"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["sns.amazonaws.com", "cloudwatch.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}
