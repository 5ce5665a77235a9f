variable "name" {
  description = "Name of the Kinesis data stream."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z0-9_.-]{1,128}$", var.name))
    error_message = "name must be 1-128 characters of letters, digits, '_', '.' and '-'."
  }
}

variable "kms_key_arn" {
  description = "ARN of the KMS key that encrypts records at rest."
  type        = string
}

variable "on_demand" {
  description = "On-demand capacity mode (AWS scales shards); otherwise provisioned with shard_count shards."
  type        = bool
  default     = false
}

variable "shard_count" {
  description = "Number of shards in provisioned mode (ignored on demand)."
  type        = number
  default     = 1

  validation {
    condition     = var.shard_count >= 1 && floor(var.shard_count) == var.shard_count
    error_message = "shard_count must be a whole number of at least 1."
  }
}

variable "retention_hours" {
  description = "How long records stay readable on the stream, in hours."
  type        = number
  default     = 168

  validation {
    condition     = var.retention_hours >= 24 && var.retention_hours <= 8760
    error_message = "retention_hours must be between 24 and 8760."
  }
}
