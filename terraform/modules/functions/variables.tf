variable "name_prefix" {
  description = "Prefix of every name: <project>-<workspace>."
  type        = string
}

variable "name" {
  description = "Short name of the function, as in functions/<name> (e.g. projector); the function is <name_prefix>-<name>."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9_-]{1,30}$", var.name))
    error_message = "name must be 2-31 characters of lower-case letters, digits, '_' and '-'."
  }
}

variable "handler" {
  description = "Handler path, module.function (e.g. functions.projector.handler.handle)."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z_][A-Za-z0-9_.]*\\.[A-Za-z_][A-Za-z0-9_]*$", var.handler))
    error_message = "handler must be a dotted module path followed by a function name."
  }
}

variable "runtime" {
  description = "Lambda runtime (the root module reads it from terraform/lambda.json, with the package's build)."
  type        = string

  validation {
    condition     = contains(["python3.11", "python3.12", "python3.13"], var.runtime)
    error_message = "runtime must be python3.11, python3.12 or python3.13."
  }
}

variable "architecture" {
  description = "Instruction set the package's dependencies were built for."
  type        = string

  validation {
    condition     = contains(["x86_64", "arm64"], var.architecture)
    error_message = "architecture must be x86_64 or arm64."
  }
}

variable "package" {
  description = "Deployment package already uploaded to S3 (code from S3 lets functions create in parallel)."
  type = object({
    s3_bucket         = string
    s3_key            = string
    s3_object_version = optional(string)
    source_code_hash  = optional(string)
  })
}

variable "layers" {
  description = "Lambda layer version ARNs, in the order Lambda extracts them (e.g. the lake writer's layer, which supplies pyarrow and pyiceberg)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for arn in var.layers : can(regex("^arn:aws[a-z-]*:lambda:[a-z0-9-]+:[0-9]{12}:layer:[A-Za-z0-9_-]+:[0-9]+$", arn))])
    error_message = "layers must be Lambda layer version ARNs."
  }
}

variable "memory_size" {
  description = "Memory in MB."
  type        = number
  default     = 512

  validation {
    condition     = var.memory_size >= 128 && var.memory_size <= 10240
    error_message = "memory_size must be between 128 and 10240 MB."
  }
}

variable "timeout" {
  description = "Timeout in seconds."
  type        = number
  default     = 60

  validation {
    condition     = var.timeout >= 1 && var.timeout <= 900
    error_message = "timeout must be between 1 and 900 seconds."
  }
}

variable "reserved_concurrent_executions" {
  description = "Concurrency reserved for (and capping) the function."
  type        = number
  default     = 10

  validation {
    condition     = var.reserved_concurrent_executions >= 1
    error_message = "reserved_concurrent_executions must be at least 1."
  }
}

variable "environment" {
  description = "Environment variables (stream, table and bucket names the handler reads into its settings)."
  type        = map(string)
  default     = {}
}

variable "kms_key_arn" {
  description = "KMS key that encrypts the environment, the log group and the dead-letter queue."
  type        = string
}

variable "log_retention_days" {
  description = "Retention of the function's log group."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a retention CloudWatch Logs accepts."
  }
}

variable "alarm_topic_arn" {
  description = "SNS topic notified when the dead-letter queue holds messages."
  type        = string
}

variable "permissions" {
  description = "What the function may touch, by ARN; the role grants only these actions on only these resources."
  type = object({
    dynamodb_read      = optional(list(string), []) # table ARNs (their indexes are included)
    dynamodb_write     = optional(list(string), []) # table ARNs
    s3_read            = optional(list(string), []) # object ARN patterns, e.g. arn:aws:s3:::bucket/uploads/*
    s3_write           = optional(list(string), []) # object ARN patterns
    s3_delete          = optional(list(string), []) # object ARN patterns
    s3_list            = optional(list(string), []) # bucket ARNs
    glue_tables        = optional(list(string), []) # Glue database ARNs whose tables it reads, creates and commits to
    sns_publish        = optional(list(string), []) # topic ARNs
    sqs_send           = optional(list(string), []) # queue ARNs
    kinesis_put        = optional(list(string), []) # stream ARNs
    kms_use            = optional(list(string), []) # key ARNs for data the function encrypts or decrypts
    metric_namespaces  = optional(list(string), []) # CloudWatch namespaces it may put metrics into
    rekognition_detect = optional(bool, false)      # rekognition:DetectLabels
  })
  default = {}
}

variable "kinesis_event_sources" {
  description = "Kinesis streams that invoke the function, by key, with the mapping's batching and failure settings."
  type = map(object({
    stream_arn                         = string
    starting_position                  = optional(string, "TRIM_HORIZON")
    batch_size                         = optional(number, 100)
    maximum_batching_window_in_seconds = optional(number, 5)
    parallelization_factor             = optional(number, 1)
    bisect_batch_on_function_error     = optional(bool, true)
    maximum_retry_attempts             = optional(number, 5)
    maximum_record_age_in_seconds      = optional(number, 86400)
  }))
  default = {}

  validation {
    condition     = alltrue([for source in values(var.kinesis_event_sources) : contains(["TRIM_HORIZON", "LATEST"], source.starting_position)])
    error_message = "starting_position must be TRIM_HORIZON or LATEST."
  }

  validation {
    condition     = alltrue([for source in values(var.kinesis_event_sources) : source.batch_size >= 1 && source.batch_size <= 10000])
    error_message = "Kinesis batch_size must be between 1 and 10000."
  }

  validation {
    condition     = alltrue([for source in values(var.kinesis_event_sources) : source.maximum_batching_window_in_seconds >= 0 && source.maximum_batching_window_in_seconds <= 300])
    error_message = "maximum_batching_window_in_seconds must be between 0 and 300."
  }

  validation {
    condition     = alltrue([for source in values(var.kinesis_event_sources) : source.maximum_retry_attempts >= -1 && source.maximum_retry_attempts <= 10000])
    error_message = "maximum_retry_attempts must be between -1 (forever) and 10000."
  }

  validation {
    condition     = alltrue([for source in values(var.kinesis_event_sources) : source.maximum_record_age_in_seconds == -1 || (source.maximum_record_age_in_seconds >= 60 && source.maximum_record_age_in_seconds <= 604800)])
    error_message = "maximum_record_age_in_seconds must be -1 (forever) or between 60 and 604800."
  }

  validation {
    condition     = alltrue([for source in values(var.kinesis_event_sources) : source.parallelization_factor >= 1 && source.parallelization_factor <= 10])
    error_message = "parallelization_factor must be between 1 and 10."
  }
}

variable "sqs_event_sources" {
  description = "SQS queues that invoke the function, by key."
  type = map(object({
    queue_arn                          = string
    batch_size                         = optional(number, 10)
    maximum_batching_window_in_seconds = optional(number, 0)
  }))
  default = {}

  validation {
    condition     = alltrue([for source in values(var.sqs_event_sources) : source.batch_size >= 1 && source.batch_size <= 10000])
    error_message = "SQS batch_size must be between 1 and 10000."
  }

  validation {
    condition     = alltrue([for source in values(var.sqs_event_sources) : source.batch_size <= 10 || source.maximum_batching_window_in_seconds >= 1])
    error_message = "An SQS batch_size above 10 needs a batching window of at least one second."
  }
}
