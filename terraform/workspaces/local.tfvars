# The embedded emulator and LocalStack; also used for any workspace without its own
# file there (a per-branch pr-42, say).
stream = {
  shard_count = 2
}
deletion_protection      = false
log_retention_days       = 7
kms_deletion_window_days = 7
lifecycle_days = {
  quarantine_expiration     = 14
  athena_results_expiration = 1
  noncurrent_expiration     = 7
}
# The local runtime does not fire schedules: `pipeline lake compact` runs it by hand.
lake_compaction = {
  snapshot_retention_days = 1
  snapshots_kept          = 5
  orphan_min_age_hours    = 24
}
