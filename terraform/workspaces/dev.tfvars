stream = {
  shard_count = 1
}
deletion_protection      = false
log_retention_days       = 14
kms_deletion_window_days = 7
lifecycle_days = {
  quarantine_expiration     = 30
  athena_results_expiration = 3
  noncurrent_expiration     = 7
}
athena_bytes_scanned_cutoff = 1073741824 # 1 GiB
lake_compaction = {
  snapshot_retention_days = 3
  snapshots_kept          = 5
}
