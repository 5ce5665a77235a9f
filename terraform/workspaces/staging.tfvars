stream = {
  shard_count = 2
}
deletion_protection      = false
log_retention_days       = 30
kms_deletion_window_days = 14
lifecycle_days = {
  quarantine_expiration     = 30
  athena_results_expiration = 7
  noncurrent_expiration     = 14
}
athena_bytes_scanned_cutoff = 5368709120 # 5 GiB
