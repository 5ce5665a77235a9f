variable "name_prefix" {
  description = "Prefix of every name: <project>-<workspace> (hyphens become underscores in Glue names)."
  type        = string
}

variable "lake_bucket" {
  description = "Bucket that holds the Iceberg tables, one prefix per table: <table>/data and <table>/metadata."
  type        = string
}

variable "results_bucket" {
  description = "Bucket for Athena query results."
  type        = string
}

variable "kms_key_arn" {
  description = "ARN of the KMS key that encrypts Athena results."
  type        = string
}

variable "bytes_scanned_cutoff" {
  description = "Athena cancels a query once it has scanned this many bytes."
  type        = number

  validation {
    condition     = var.bytes_scanned_cutoff >= 10485760
    error_message = "bytes_scanned_cutoff must be at least 10 MiB."
  }
}

variable "force_destroy" {
  description = "Let destroy delete the workgroup together with its named queries."
  type        = bool
  default     = false
}
