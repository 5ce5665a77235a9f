variable "name_prefix" {
  description = "Prefix of every name: <project>-<workspace>."
  type        = string
}

variable "name_suffix" {
  description = "Suffix that makes bucket names globally unique (the account id)."
  type        = string
}

variable "kms_key_arn" {
  description = "ARN of the KMS key that encrypts objects."
  type        = string
}

variable "force_destroy" {
  description = "Let destroy delete buckets that still hold objects (non-production workspaces)."
  type        = bool
  default     = false
}

variable "uploads_prefix" {
  description = "Key prefix under which uploaded images notify the labeler queue."
  type        = string
  default     = "uploads/"

  validation {
    condition     = can(regex("^[a-zA-Z0-9_.-]+/$", var.uploads_prefix))
    error_message = "uploads_prefix must be a single folder name ending in '/'."
  }
}

variable "lifecycle_days" {
  description = "Lifecycle periods in days: lake transitions to STANDARD_IA and GLACIER, quarantine and Athena results expiry, noncurrent versions."
  type = object({
    lake_infrequent_access    = number
    lake_glacier              = number
    quarantine_expiration     = number
    athena_results_expiration = number
    noncurrent_expiration     = number
  })

  validation {
    condition     = var.lifecycle_days.lake_infrequent_access >= 30 && var.lifecycle_days.lake_glacier > var.lifecycle_days.lake_infrequent_access
    error_message = "lake_infrequent_access must be at least 30 days and lake_glacier must come after it."
  }
}

variable "queue_visibility_timeout_seconds" {
  description = "Visibility timeout of the uploads queue; at least the labeler function's timeout times six."
  type        = number
  default     = 360

  validation {
    condition     = var.queue_visibility_timeout_seconds >= 0 && var.queue_visibility_timeout_seconds <= 43200
    error_message = "queue_visibility_timeout_seconds must be between 0 and 43200."
  }
}

variable "max_receive_count" {
  description = "Receives of an upload notification before it moves to the dead-letter queue."
  type        = number
  default     = 5

  validation {
    condition     = var.max_receive_count >= 1 && var.max_receive_count <= 1000
    error_message = "max_receive_count must be between 1 and 1000."
  }
}
