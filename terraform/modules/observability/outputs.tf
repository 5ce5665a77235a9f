output "dashboard_name" {
  description = "Name of the CloudWatch dashboard."
  value       = aws_cloudwatch_dashboard.this.dashboard_name
}

output "alarm_names" {
  description = "Names of every alarm this module created."
  value = concat(
    [aws_cloudwatch_metric_alarm.iterator_age.alarm_name, aws_cloudwatch_metric_alarm.projection_stalled.alarm_name],
    [for alarm in aws_cloudwatch_metric_alarm.function : alarm.alarm_name],
    [for alarm in aws_cloudwatch_metric_alarm.dead_letters : alarm.alarm_name],
  )
}
