# Production hardening: on-demand stream capacity, deletion protection on tables and
# non-empty buckets, a year of logs, a long key-deletion window, longer-kept history.
stream = {
  on_demand       = true
  retention_hours = 168
}
deletion_protection      = true
log_retention_days       = 365
kms_deletion_window_days = 30
lifecycle_days = {
  quarantine_expiration     = 180
  athena_results_expiration = 30
  noncurrent_expiration     = 90
}
athena_bytes_scanned_cutoff = 107374182400 # 100 GiB
iterator_age_alarm_ms       = 30000
# Two weeks of time travel on the lake; compaction after the night's late events.
lake_compaction = {
  schedule                = "cron(30 3 * * ? *)"
  snapshot_retention_days = 14
  snapshots_kept          = 20
  orphan_min_age_hours    = 96
}
