variable "name_prefix" {
  description = "Prefix of every topic name: <project>-<workspace>."
  type        = string
}

variable "kms_key_arn" {
  description = "ARN of the KMS key that encrypts messages at rest."
  type        = string
}

variable "email_subscriptions" {
  description = "E-mail addresses to subscribe, by topic key (anomaly_alerts, fraud_alerts, user_notifications, operations)."
  type        = map(list(string))
  default     = {}

  validation {
    condition     = alltrue([for topic in keys(var.email_subscriptions) : contains(["anomaly_alerts", "fraud_alerts", "user_notifications", "operations"], topic)])
    error_message = "email_subscriptions keys must be anomaly_alerts, fraud_alerts, user_notifications or operations."
  }
}
