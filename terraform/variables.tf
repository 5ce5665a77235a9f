variable "project" {
  description = "Project name; every resource name starts with <project>-<workspace>."
  type        = string
  default     = "pipelines"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,19}$", var.project))
    error_message = "project must be 2-20 characters of lower-case letters, digits and hyphens, starting with a letter."
  }
}

variable "region" {
  description = "AWS region to deploy into."
  type        = string
  default     = "us-east-1"

  validation {
    condition     = can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", var.region))
    error_message = "region must be an AWS region name such as us-east-1."
  }
}

variable "stream" {
  description = "Kinesis data stream settings: on-demand capacity, or a provisioned shard count."
  type = object({
    on_demand       = optional(bool, false)
    shard_count     = optional(number, 1)
    retention_hours = optional(number, 168)
  })
  default = {}

  validation {
    condition     = var.stream.shard_count >= 1 && var.stream.shard_count <= 500 && floor(var.stream.shard_count) == var.stream.shard_count
    error_message = "stream.shard_count must be a whole number from 1 to 500."
  }

  validation {
    condition     = var.stream.retention_hours >= 24 && var.stream.retention_hours <= 8760
    error_message = "stream.retention_hours must be between 24 and 8760."
  }
}

variable "deletion_protection" {
  description = "Protect stateful resources (DynamoDB tables) from deletion and keep non-empty buckets on destroy."
  type        = bool
  default     = false
}

variable "log_retention_days" {
  description = "Retention of the CloudWatch log groups created for functions."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a retention CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, ..., 3653)."
  }
}

variable "lifecycle_days" {
  description = "Object lifecycle, in days: lake transitions (seed article: IA at 30, Glacier at 90), quarantine and Athena results expiry, noncurrent versions."
  type = object({
    lake_infrequent_access    = optional(number, 30)
    lake_glacier              = optional(number, 90)
    quarantine_expiration     = optional(number, 90)
    athena_results_expiration = optional(number, 7)
    noncurrent_expiration     = optional(number, 30)
  })
  default = {}

  validation {
    condition     = var.lifecycle_days.lake_infrequent_access >= 30 && var.lifecycle_days.lake_glacier > var.lifecycle_days.lake_infrequent_access
    error_message = "lake_infrequent_access must be at least 30 days (an S3 minimum) and lake_glacier must come after it."
  }

  validation {
    condition     = alltrue([for days in values(var.lifecycle_days) : days >= 1])
    error_message = "Every lifecycle period must be at least one day."
  }
}

variable "athena_bytes_scanned_cutoff" {
  description = "Athena cancels a query of the workgroup once it has scanned this many bytes."
  type        = number
  default     = 10737418240 # 10 GiB

  validation {
    condition     = var.athena_bytes_scanned_cutoff >= 10485760
    error_message = "athena_bytes_scanned_cutoff must be at least 10 MiB (Athena's minimum)."
  }
}

variable "alert_email_subscriptions" {
  description = "E-mail addresses subscribed to each alert topic, by topic key (anomaly_alerts, fraud_alerts, user_notifications, operations)."
  type        = map(list(string))
  default     = {}

  validation {
    condition     = alltrue([for topic in keys(var.alert_email_subscriptions) : contains(["anomaly_alerts", "fraud_alerts", "user_notifications", "operations"], topic)])
    error_message = "alert_email_subscriptions keys must be anomaly_alerts, fraud_alerts, user_notifications or operations."
  }

  validation {
    condition     = alltrue([for email in flatten(values(var.alert_email_subscriptions)) : can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", email))])
    error_message = "alert_email_subscriptions must hold e-mail addresses."
  }
}

variable "kms_deletion_window_days" {
  description = "Waiting period before the workspace's KMS key is deleted after destroy."
  type        = number
  default     = 30

  validation {
    condition     = var.kms_deletion_window_days >= 7 && var.kms_deletion_window_days <= 30
    error_message = "kms_deletion_window_days must be between 7 and 30."
  }
}

variable "iterator_age_alarm_ms" {
  description = "Alarm when the oldest unread record on the stream is older than this (milliseconds)."
  type        = number
  default     = 60000

  validation {
    condition     = var.iterator_age_alarm_ms >= 1000
    error_message = "iterator_age_alarm_ms must be at least 1000."
  }
}

variable "lambda_package" {
  description = "Path of the Lambda deployment package built by `make package` (relative to terraform/ or absolute)."
  type        = string
  default     = "../build/lambda/pipelines.zip"

  validation {
    condition     = endswith(var.lambda_package, ".zip")
    error_message = "lambda_package must be a .zip file."
  }
}

variable "lake_layer" {
  description = "Path of the lake writer's layer (pyarrow, pyiceberg) built by `make package` (relative to terraform/ or absolute). Not read on a local endpoint."
  type        = string
  default     = "../build/lambda/lake-layer.zip"

  validation {
    condition     = endswith(var.lake_layer, ".zip")
    error_message = "lake_layer must be a .zip file."
  }
}

variable "fact_ttl_days" {
  description = "How long facts (activities, metrics) stay in their projection tables before DynamoDB expires them."
  type        = number
  default     = 90

  validation {
    condition     = var.fact_ttl_days >= 1
    error_message = "fact_ttl_days must be at least 1."
  }
}

variable "emulated" {
  description = "True when applied to a local endpoint (the embedded emulator or LocalStack). Set only by the override file `pipeline up` generates, never in tfvars."
  type        = bool
  default     = false
}

variable "lake_writer_layers" {
  description = "Extra layer version ARNs for the lake writer and the lake compactor (an extension, say), before its own lake layer. They count towards Lambda's 250 MiB unzipped limit, of which `make package` leaves 10% free."
  type        = list(string)
  default     = []

  validation {
    condition     = length(var.lake_writer_layers) <= 4
    error_message = "A function takes five layers, and the lake layer is one: at most four extra."
  }
}

variable "lake_compaction" {
  description = "The lake compactor: its schedule (an EventBridge Scheduler expression, UTC), whether it runs, how long snapshots stay readable (time travel), how many are kept whatever their age, and how old an unreferenced file must be before it is deleted."
  type = object({
    schedule                = optional(string, "cron(30 2 * * ? *)")
    enabled                 = optional(bool, true)
    snapshot_retention_days = optional(number, 7)
    snapshots_kept          = optional(number, 10)
    orphan_min_age_hours    = optional(number, 72)
  })
  default = {}

  validation {
    condition     = can(regex("^(cron|rate)\\(.+\\)$", var.lake_compaction.schedule))
    error_message = "lake_compaction.schedule must be a cron(...) or rate(...) expression."
  }

  validation {
    condition     = var.lake_compaction.snapshot_retention_days >= 1 && var.lake_compaction.snapshots_kept >= 1
    error_message = "lake_compaction must keep snapshots for at least a day, and at least one snapshot."
  }

  validation {
    condition     = var.lake_compaction.orphan_min_age_hours >= 24
    error_message = "lake_compaction.orphan_min_age_hours must be at least 24: a younger unreferenced file may belong to a commit in flight."
  }
}

variable "projection_tables" {
  description = "Tables a projection reads and writes instead of the one Terraform made, after a rebuild was promoted (`pipeline replay promote` records this in <state dir>/projections/<workspace>.tfvars.json). Keys: users, user_activities, system_metrics, transactions, image_analysis; values: shadow tables named <table>-rp-<id>."
  type        = map(string)
  default     = {}

  validation {
    condition = alltrue([
      for projection, table in var.projection_tables :
      contains(["users", "user_activities", "system_metrics", "transactions", "image_analysis"], projection)
      && can(regex("-rp-[A-Za-z0-9-]+$", table))
    ])
    error_message = "projection_tables maps a projector projection (users, user_activities, system_metrics, transactions, image_analysis) to a rebuilt shadow table named <table>-rp-<replay id>."
  }
}

variable "replay_operator_arns" {
  description = "Principals (users, roles) that may assume the replay role; empty: the account, so that an IAM policy of the account grants sts:AssumeRole on it."
  type        = list(string)
  default     = []
}
