variable "name_prefix" {
  description = "Prefix of every table name: <project>-<workspace>."
  type        = string
}

variable "kms_key_arn" {
  description = "ARN of the KMS key that encrypts the tables."
  type        = string
}

variable "deletion_protection" {
  description = "Refuse to delete the tables (production)."
  type        = bool
  default     = false
}

variable "ttl_attribute" {
  description = "Attribute holding the epoch-seconds expiry on tables with a time to live."
  type        = string
  default     = "ttl"
}
