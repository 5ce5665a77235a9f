locals {
  topics = {
    anomaly_alerts     = "Metric anomalies (static thresholds and rolling baselines)"
    fraud_alerts       = "Suspicious transactions (amount and velocity rules)"
    user_notifications = "Notifications to users"
    operations         = "CloudWatch alarms of the pipeline itself"
  }

  email_subscriptions = merge([
    for topic, emails in var.email_subscriptions : {
      for email in emails : "${topic}:${email}" => { topic = topic, email = email }
    }
  ]...)
}

resource "aws_sns_topic" "this" {
  for_each = local.topics

  name              = "${var.name_prefix}-${replace(each.key, "_", "-")}"
  display_name      = each.value
  kms_master_key_id = var.kms_key_arn
}

resource "aws_sns_topic_subscription" "email" {
  for_each = local.email_subscriptions

  topic_arn = aws_sns_topic.this[each.value.topic].arn
  protocol  = "email"
  endpoint  = each.value.email
}
