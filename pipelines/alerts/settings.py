"""The alerter's configuration, read once from environment variables.

Required: ``ALERTS_TABLE``, ``METRIC_BASELINES_TABLE``, ``RECENT_TRANSACTIONS_TABLE``
(table names), ``ANOMALY_TOPIC_ARN``, ``FRAUD_TOPIC_ARN`` (SNS topics) and
``QUARANTINE_BUCKET``.

Optional, with defaults: ``ALERT_TTL_DAYS`` (90) - how long alert records are kept;
``RECENT_TRANSACTIONS_TTL_HOURS`` (24) - how long a transaction stays in the velocity
window table; ``TTL_ATTRIBUTE`` (``ttl``); ``WRITE_MAX_ATTEMPTS`` (6),
``WRITE_BACKOFF_BASE_MS`` (50), ``WRITE_BACKOFF_MAX_MS`` (2000); ``STATE_CONCURRENCY`` (8)
- state reads in flight at once; ``POWERTOOLS_SERVICE_NAME`` (``alerter``);
``POWERTOOLS_METRICS_NAMESPACE`` (``Pipelines``); ``AWS_ENDPOINT_URL``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from pipelines.settings import RetryPolicy, _positive_int, _required


@dataclass(frozen=True, slots=True)
class AlerterSettings:
    """Everything the alerter needs to know about its environment."""

    alerts_table: str
    metric_baselines_table: str
    recent_transactions_table: str
    anomaly_topic_arn: str
    fraud_topic_arn: str
    quarantine_bucket: str
    service_name: str = "alerter"
    metrics_namespace: str = "Pipelines"
    endpoint_url: str | None = None
    alert_ttl_days: int = 90
    recent_transactions_ttl_hours: int = 24
    ttl_attribute: str = "ttl"
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    state_concurrency: int = 8

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AlerterSettings:
        env = os.environ if environ is None else environ
        return cls(
            alerts_table=_required(env, "ALERTS_TABLE"),
            metric_baselines_table=_required(env, "METRIC_BASELINES_TABLE"),
            recent_transactions_table=_required(env, "RECENT_TRANSACTIONS_TABLE"),
            anomaly_topic_arn=_required(env, "ANOMALY_TOPIC_ARN"),
            fraud_topic_arn=_required(env, "FRAUD_TOPIC_ARN"),
            quarantine_bucket=_required(env, "QUARANTINE_BUCKET"),
            service_name=env.get("POWERTOOLS_SERVICE_NAME") or "alerter",
            metrics_namespace=env.get("POWERTOOLS_METRICS_NAMESPACE") or "Pipelines",
            endpoint_url=env.get("AWS_ENDPOINT_URL") or None,
            alert_ttl_days=_positive_int(env, "ALERT_TTL_DAYS", 90),
            recent_transactions_ttl_hours=_positive_int(env, "RECENT_TRANSACTIONS_TTL_HOURS", 24),
            ttl_attribute=env.get("TTL_ATTRIBUTE") or "ttl",
            retry=RetryPolicy(
                max_attempts=_positive_int(env, "WRITE_MAX_ATTEMPTS", 6),
                base_delay=_positive_int(env, "WRITE_BACKOFF_BASE_MS", 50) / 1000,
                max_delay=_positive_int(env, "WRITE_BACKOFF_MAX_MS", 2000) / 1000,
            ),
            state_concurrency=_positive_int(env, "STATE_CONCURRENCY", 8),
        )
