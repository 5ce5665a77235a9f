variable "name_prefix" {
  description = "Prefix of every name: <project>-<workspace>."
  type        = string
}

variable "region" {
  description = "Region the dashboard's metrics come from."
  type        = string
}

variable "stream_name" {
  description = "Kinesis stream whose iterator age is watched."
  type        = string
}

variable "function_names" {
  description = "Lambda functions whose errors and throttles are charted and alarmed."
  type        = list(string)
  default     = []
}

variable "dead_letter_queue_names" {
  description = "Dead-letter queues whose depth is charted and alarmed."
  type        = list(string)
  default     = []
}

variable "function_dead_letter_queue_names" {
  description = "Functions' dead-letter queues: charted here, alarmed by the functions module."
  type        = list(string)
  default     = []
}

variable "projected_events_metric" {
  description = "The projector's count of projected events, as its handler emits it (Powertools EMF: namespace, metric name, dimensions)."
  type = object({
    namespace  = optional(string, "Pipelines")
    name       = optional(string, "EventsProjected")
    dimensions = optional(map(string), { service = "projector" })
  })
  default = {}
}

variable "alarm_topic_arn" {
  description = "SNS topic that receives alarm and OK notifications."
  type        = string
}

variable "iterator_age_alarm_ms" {
  description = "Alarm threshold for the stream's iterator age, in milliseconds."
  type        = number
  default     = 60000

  validation {
    condition     = var.iterator_age_alarm_ms >= 1000
    error_message = "iterator_age_alarm_ms must be at least 1000."
  }
}

variable "period_seconds" {
  description = "Period of the alarms and dashboard charts, in seconds."
  type        = number
  default     = 300

  validation {
    condition     = contains([60, 300, 900, 3600], var.period_seconds)
    error_message = "period_seconds must be 60, 300, 900 or 3600."
  }
}
