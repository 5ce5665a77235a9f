# The role `pipeline replay` and `pipeline quarantine` assume from a laptop or CI: they run
# outside Lambda, with the workspace's credentials, and need only what this grants.
#
#  * replay onto the stream: read the archive, put records on the stream;
#  * rebuild the read models (--target projections): read the live projector tables; create,
#    write, read and delete shadow tables named <table>-rp-<replay id> and nothing else;
#    switch the projector function's table variables (promote);
#  * rebuild lake partitions (--target lake): commit to the lake's Iceberg tables;
#  * list and redrive quarantined records: read the quarantine bucket.
#
# Terraform does not own the shadow tables (a rebuild creates and drops them); a promoted
# one is recorded in var.projection_tables so that an apply keeps the projector on it.

locals {
  replay_trusted       = length(var.replay_operator_arns) > 0 ? var.replay_operator_arns : ["arn:${local.partition}:iam::${local.account_id}:root"]
  projector_table_arns = [for table in local.projector_tables : module.projections.table_arns[table]]
  shadow_table_arns    = [for arn in local.projector_table_arns : "${arn}-rp-*"]
  glue_catalog_arn     = "arn:${local.partition}:glue:${local.region}:${local.account_id}:catalog"
}

data "aws_iam_policy_document" "replay_trust" {
  statement {
    sid     = "OperatorsAssume"
    actions = ["sts:AssumeRole"]
    principals {
      type        = "AWS"
      identifiers = local.replay_trusted
    }
  }
}

resource "aws_iam_role" "replay" {
  name                 = "${local.name}-replay"
  description          = "Assumed by `pipeline replay` and `pipeline quarantine` for the ${terraform.workspace} workspace."
  assume_role_policy   = data.aws_iam_policy_document.replay_trust.json
  max_session_duration = 12 * 3600
}

data "aws_iam_policy_document" "replay" {
  statement {
    sid       = "ReadArchive"
    actions   = ["s3:GetObject"]
    resources = ["${module.storage.bucket_arns["archive"]}/${local.archive_prefix}/*"]
  }
  statement {
    sid       = "ListArchiveAndQuarantine"
    actions   = ["s3:ListBucket"]
    resources = [module.storage.bucket_arns["archive"], module.storage.bucket_arns["quarantine"]]
  }
  statement {
    sid       = "ReadQuarantine"
    actions   = ["s3:GetObject"]
    resources = ["${module.storage.bucket_arns["quarantine"]}/*"]
  }
  statement {
    sid       = "PutOnStream"
    actions   = ["kinesis:PutRecord", "kinesis:PutRecords", "kinesis:ListShards", "kinesis:DescribeStreamSummary"]
    resources = [module.stream.stream_arn]
  }
  statement {
    sid       = "ReadLiveProjections"
    actions   = ["dynamodb:DescribeTable", "dynamodb:DescribeTimeToLive", "dynamodb:Scan", "dynamodb:GetItem"]
    resources = concat(local.projector_table_arns, local.shadow_table_arns)
  }
  statement {
    sid = "ManageShadowProjections"
    actions = [
      "dynamodb:CreateTable", "dynamodb:DeleteTable", "dynamodb:TagResource",
      "dynamodb:UpdateTimeToLive", "dynamodb:UpdateContinuousBackups",
      "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:BatchWriteItem", "dynamodb:Query",
    ]
    resources = concat(local.shadow_table_arns, [for arn in local.shadow_table_arns : "${arn}/index/*"])
  }
  statement {
    sid       = "SwitchProjectorTables"
    actions   = ["lambda:GetFunctionConfiguration", "lambda:UpdateFunctionConfiguration"]
    resources = [module.projector.function_arn]
  }
  statement {
    sid       = "UseDataKeys"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"]
    resources = [aws_kms_key.this.arn]
  }
  statement {
    sid       = "EncryptShadowTables"
    actions   = ["kms:CreateGrant"]
    resources = [aws_kms_key.this.arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["dynamodb.${local.region}.amazonaws.com"]
    }
    condition {
      test     = "Bool"
      variable = "kms:GrantIsForAWSResource"
      values   = ["true"]
    }
  }
  statement {
    sid       = "CommitLakeTables"
    actions   = ["glue:GetDatabase", "glue:GetTable", "glue:GetTables", "glue:UpdateTable"]
    resources = [local.glue_catalog_arn, module.catalog.database_arn, replace("${module.catalog.database_arn}/*", ":database/", ":table/")]
  }
  statement {
    sid       = "WriteLakeFiles"
    actions   = ["s3:GetObject", "s3:PutObject"]
    resources = ["${module.storage.bucket_arns["lake"]}/*"]
  }
  statement {
    sid       = "ListLake"
    actions   = ["s3:ListBucket"]
    resources = [module.storage.bucket_arns["lake"]]
  }
}

resource "aws_iam_role_policy" "replay" {
  name   = "replay"
  role   = aws_iam_role.replay.id
  policy = data.aws_iam_policy_document.replay.json
}
