locals {
  projected = var.projected_events_metric
  projected_metric = concat(
    [local.projected.namespace, local.projected.name],
    flatten([for name, value in local.projected.dimensions : [name, value]]),
  )

  metric_widgets = concat(
    [
      {
        title   = "Stream iterator age (ms)"
        stat    = "Maximum"
        metrics = [["AWS/Kinesis", "GetRecords.IteratorAgeMilliseconds", "StreamName", var.stream_name]]
      },
      {
        title = "Events projected"
        stat  = "Sum"
        metrics = [
          ["AWS/Kinesis", "IncomingRecords", "StreamName", var.stream_name],
          local.projected_metric,
        ]
      },
    ],
    length(var.function_names) == 0 ? [] : [
      {
        title   = "Function errors"
        stat    = "Sum"
        metrics = [for name in var.function_names : ["AWS/Lambda", "Errors", "FunctionName", name]]
      },
      {
        title   = "Function throttles"
        stat    = "Sum"
        metrics = [for name in var.function_names : ["AWS/Lambda", "Throttles", "FunctionName", name]]
      },
    ],
    length(local.charted_dead_letter_queues) == 0 ? [] : [
      {
        title   = "Dead-letter queue depth"
        stat    = "Maximum"
        metrics = [for name in local.charted_dead_letter_queues : ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", name]]
      },
    ],
  )

  # Function dead-letter queues are alarmed by the functions module itself; chart them all.
  charted_dead_letter_queues = distinct(concat(var.dead_letter_queue_names, var.function_dead_letter_queue_names))

  function_alarms = merge([
    for name in var.function_names : {
      "${name}-errors"    = { function = name, metric = "Errors" }
      "${name}-throttles" = { function = name, metric = "Throttles" }
    }
  ]...)
}

resource "aws_cloudwatch_dashboard" "this" {
  dashboard_name = var.name_prefix
  dashboard_body = jsonencode({
    widgets = [
      for index, widget in local.metric_widgets : {
        type   = "metric"
        x      = (index % 2) * 12
        y      = floor(index / 2) * 6
        width  = 12
        height = 6
        properties = {
          title   = widget.title
          region  = var.region
          stat    = widget.stat
          period  = var.period_seconds
          view    = "timeSeries"
          metrics = widget.metrics
        }
      }
    ]
  })
}

resource "aws_cloudwatch_metric_alarm" "iterator_age" {
  alarm_name          = "${var.name_prefix}-stream-iterator-age"
  alarm_description   = "Consumers are falling behind the stream ${var.stream_name}."
  namespace           = "AWS/Kinesis"
  metric_name         = "GetRecords.IteratorAgeMilliseconds"
  dimensions          = { StreamName = var.stream_name }
  statistic           = "Maximum"
  period              = var.period_seconds
  evaluation_periods  = 3
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.iterator_age_alarm_ms
  treat_missing_data  = "notBreaching"
  alarm_actions       = [var.alarm_topic_arn]
  ok_actions          = [var.alarm_topic_arn]
}

# Records arrive but nothing is projected: the projector is down or failing every batch.
resource "aws_cloudwatch_metric_alarm" "projection_stalled" {
  alarm_name          = "${var.name_prefix}-projection-stalled"
  alarm_description   = "Records arrive on ${var.stream_name} but no events are projected."
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = 1
  evaluation_periods  = 3
  treat_missing_data  = "notBreaching"
  alarm_actions       = [var.alarm_topic_arn]
  ok_actions          = [var.alarm_topic_arn]

  metric_query {
    id          = "stalled"
    expression  = "IF(incoming > 0 AND projected == 0, 1, 0)"
    label       = "Stalled"
    return_data = true
  }

  metric_query {
    id = "incoming"
    metric {
      namespace   = "AWS/Kinesis"
      metric_name = "IncomingRecords"
      dimensions  = { StreamName = var.stream_name }
      stat        = "Sum"
      period      = var.period_seconds
    }
  }

  metric_query {
    id = "projected"
    metric {
      namespace   = local.projected.namespace
      metric_name = local.projected.name
      dimensions  = local.projected.dimensions
      stat        = "Sum"
      period      = var.period_seconds
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "function" {
  for_each = local.function_alarms

  alarm_name          = each.key
  alarm_description   = "${each.value.function} reports ${each.value.metric}."
  namespace           = "AWS/Lambda"
  metric_name         = each.value.metric
  dimensions          = { FunctionName = each.value.function }
  statistic           = "Sum"
  period              = var.period_seconds
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = [var.alarm_topic_arn]
  ok_actions          = [var.alarm_topic_arn]
}

resource "aws_cloudwatch_metric_alarm" "dead_letters" {
  for_each = toset(var.dead_letter_queue_names)

  alarm_name          = "${each.key}-not-empty"
  alarm_description   = "Messages wait in the dead-letter queue ${each.key}."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = each.key }
  statistic           = "Maximum"
  period              = var.period_seconds
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = [var.alarm_topic_arn]
  ok_actions          = [var.alarm_topic_arn]
}
