data "aws_partition" "current" {}
data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

locals {
  function_name  = "${var.name_prefix}-${var.name}"
  log_group_name = "/aws/lambda/${local.function_name}"
  log_group_arn  = "arn:${data.aws_partition.current.partition}:logs:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:log-group:${local.log_group_name}"
  p              = var.permissions

  kinesis_sources = [for source in values(var.kinesis_event_sources) : source.stream_arn]
  sqs_sources     = [for source in values(var.sqs_event_sources) : source.queue_arn]

  # Only the actions the function uses, each on only the resources it names.
  statements = [
    for statement in [
      { sid = "WriteOwnLogs", actions = ["logs:CreateLogStream", "logs:PutLogEvents"], resources = ["${local.log_group_arn}:*"] },
      { sid = "SendToOwnDeadLetterQueue", actions = ["sqs:SendMessage"], resources = [aws_sqs_queue.dead_letter.arn] },
      { sid = "UseDataKeys", actions = ["kms:Decrypt", "kms:GenerateDataKey"], resources = distinct(concat([var.kms_key_arn], local.p.kms_use)) },
      {
        sid       = "ReadEventStreams"
        actions   = ["kinesis:DescribeStream", "kinesis:DescribeStreamSummary", "kinesis:GetRecords", "kinesis:GetShardIterator", "kinesis:ListShards", "kinesis:SubscribeToShard"]
        resources = local.kinesis_sources
      },
      {
        sid       = "ReceiveFromQueues"
        actions   = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ChangeMessageVisibility"]
        resources = local.sqs_sources
      },
      {
        sid       = "ReadTables"
        actions   = ["dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query", "dynamodb:DescribeTable"]
        resources = flatten([for arn in local.p.dynamodb_read : [arn, "${arn}/index/*"]])
      },
      {
        sid       = "WriteTables"
        actions   = ["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem", "dynamodb:ConditionCheckItem"]
        resources = local.p.dynamodb_write
      },
      { sid = "ReadObjects", actions = ["s3:GetObject", "s3:GetObjectVersion"], resources = local.p.s3_read },
      { sid = "WriteObjects", actions = ["s3:PutObject"], resources = local.p.s3_write },
      { sid = "DeleteObjects", actions = ["s3:DeleteObject"], resources = local.p.s3_delete },
      { sid = "ListBuckets", actions = ["s3:ListBucket"], resources = local.p.s3_list },
      {
        sid       = "CommitTables"
        actions   = ["glue:GetDatabase", "glue:GetTable", "glue:GetTables", "glue:CreateTable", "glue:UpdateTable"]
        resources = length(local.p.glue_tables) == 0 ? [] : concat(["arn:${data.aws_partition.current.partition}:glue:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:catalog"], local.p.glue_tables, [for arn in local.p.glue_tables : replace("${arn}/*", ":database/", ":table/")])
      },
      { sid = "PublishAlerts", actions = ["sns:Publish"], resources = local.p.sns_publish },
      { sid = "SendMessages", actions = ["sqs:SendMessage"], resources = local.p.sqs_send },
      { sid = "PutEvents", actions = ["kinesis:PutRecord", "kinesis:PutRecords", "kinesis:ListShards", "kinesis:DescribeStreamSummary"], resources = local.p.kinesis_put },
    ] : statement if length(statement.resources) > 0
  ]
}

resource "aws_cloudwatch_log_group" "this" {
  name              = local.log_group_name
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
}

resource "aws_sqs_queue" "dead_letter" {
  name                      = "${local.function_name}-dlq"
  message_retention_seconds = 1209600
  kms_master_key_id         = var.kms_key_arn
}

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

data "aws_iam_policy_document" "this" {
  dynamic "statement" {
    for_each = local.statements
    content {
      sid       = statement.value.sid
      actions   = statement.value.actions
      resources = statement.value.resources
    }
  }

  statement {
    sid       = "UploadTraces"
    actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
    resources = ["*"]
  }

  dynamic "statement" {
    for_each = length(local.p.metric_namespaces) > 0 ? [local.p.metric_namespaces] : []
    content {
      sid       = "PutMetrics"
      actions   = ["cloudwatch:PutMetricData"]
      resources = ["*"]
      condition {
        test     = "StringEquals"
        variable = "cloudwatch:namespace"
        values   = statement.value
      }
    }
  }

  dynamic "statement" {
    for_each = local.p.rekognition_detect ? [true] : []
    content {
      sid       = "DetectLabels"
      actions   = ["rekognition:DetectLabels"]
      resources = ["*"]
    }
  }
}

resource "aws_iam_role" "this" {
  name               = local.function_name
  assume_role_policy = data.aws_iam_policy_document.assume.json
}

resource "aws_iam_role_policy" "this" {
  name   = "least-privilege"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.this.json
}

resource "aws_lambda_function" "this" {
  # checkov:skip=CKV_AWS_117:The functions reach only AWS service APIs (Kinesis, DynamoDB, S3, SNS, SQS); a VPC would add NAT or endpoints and cold-start cost without isolating anything.
  # checkov:skip=CKV_AWS_272:Packages are built and uploaded by this repository's own pipeline; code signing needs a signing profile per account, decided outside this module.
  function_name                  = local.function_name
  role                           = aws_iam_role.this.arn
  handler                        = var.handler
  runtime                        = var.runtime
  architectures                  = [var.architecture]
  s3_bucket                      = var.package.s3_bucket
  s3_key                         = var.package.s3_key
  s3_object_version              = var.package.s3_object_version
  source_code_hash               = var.package.source_code_hash
  layers                         = var.layers
  memory_size                    = var.memory_size
  timeout                        = var.timeout
  reserved_concurrent_executions = var.reserved_concurrent_executions
  kms_key_arn                    = var.kms_key_arn

  environment {
    variables = var.environment
  }

  dead_letter_config {
    target_arn = aws_sqs_queue.dead_letter.arn
  }

  tracing_config {
    mode = "Active"
  }

  logging_config {
    log_format = "JSON"
    log_group  = aws_cloudwatch_log_group.this.name
  }

  depends_on = [aws_iam_role_policy.this]
}

resource "aws_lambda_event_source_mapping" "kinesis" {
  for_each = var.kinesis_event_sources

  function_name                      = aws_lambda_function.this.arn
  event_source_arn                   = each.value.stream_arn
  starting_position                  = each.value.starting_position
  batch_size                         = each.value.batch_size
  maximum_batching_window_in_seconds = each.value.maximum_batching_window_in_seconds
  parallelization_factor             = each.value.parallelization_factor
  bisect_batch_on_function_error     = each.value.bisect_batch_on_function_error
  maximum_retry_attempts             = each.value.maximum_retry_attempts
  maximum_record_age_in_seconds      = each.value.maximum_record_age_in_seconds
  function_response_types            = ["ReportBatchItemFailures"]

  destination_config {
    on_failure {
      destination_arn = aws_sqs_queue.dead_letter.arn
    }
  }
}

resource "aws_lambda_event_source_mapping" "sqs" {
  for_each = var.sqs_event_sources

  function_name                      = aws_lambda_function.this.arn
  event_source_arn                   = each.value.queue_arn
  batch_size                         = each.value.batch_size
  maximum_batching_window_in_seconds = each.value.maximum_batching_window_in_seconds
  function_response_types            = ["ReportBatchItemFailures"]
}

resource "aws_cloudwatch_metric_alarm" "dead_letters" {
  alarm_name          = "${local.function_name}-dlq-not-empty"
  alarm_description   = "Records or invocations of ${local.function_name} failed for good and wait in ${aws_sqs_queue.dead_letter.name}."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = aws_sqs_queue.dead_letter.name }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = [var.alarm_topic_arn]
  ok_actions          = [var.alarm_topic_arn]
}
