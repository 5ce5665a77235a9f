"""The projector's configuration, read once from environment variables.

Terraform sets these names as the Lambda function's environment variables and
the local runtime sets the same ones; nothing else reads the environment.

Required: ``USERS_TABLE``, ``USER_ACTIVITIES_TABLE``, ``SYSTEM_METRICS_TABLE``,
``TRANSACTIONS_TABLE``, ``IMAGE_ANALYSIS_TABLE`` (table names) and
``QUARANTINE_BUCKET`` (where poison records are kept).

Optional, with defaults:

* ``FACT_TTL_DAYS`` (90) - retention of facts on tables with a time to live;
* ``TTL_ATTRIBUTE`` (``ttl``) - the tables' time-to-live attribute;
* ``WRITE_MAX_ATTEMPTS`` (6), ``WRITE_BACKOFF_BASE_MS`` (50),
  ``WRITE_BACKOFF_MAX_MS`` (2000) - DynamoDB write retries (jittered, doubling);
* ``WRITE_CONCURRENCY`` (8) - conditional updates of different items in flight at once;
* ``POWERTOOLS_SERVICE_NAME`` (``projector``) - service name, and the
  quarantine key prefix;
* ``POWERTOOLS_METRICS_NAMESPACE`` (``Pipelines``) - CloudWatch namespace;
* ``AWS_ENDPOINT_URL`` (unset: AWS) - the emulator's or LocalStack's endpoint.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

from pipelines.errors import PipelineError


class SettingsError(PipelineError):
    """A required environment variable is missing or malformed."""


@dataclass(frozen=True, slots=True)
class TableNames:
    """Physical DynamoDB table names of the read models."""

    users: str
    user_activities: str
    system_metrics: str
    transactions: str
    image_analysis: str


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often, and how patiently, a DynamoDB write is retried."""

    max_attempts: int = 6
    base_delay: float = 0.05  # seconds
    max_delay: float = 2.0  # seconds


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the projector needs to know about its environment."""

    tables: TableNames
    quarantine_bucket: str
    service_name: str = "projector"
    metrics_namespace: str = "Pipelines"
    endpoint_url: str | None = None
    fact_ttl_days: int = 90
    ttl_attribute: str = "ttl"
    retry: RetryPolicy = RetryPolicy()
    write_concurrency: int = 8

    @property
    def fact_ttl_seconds(self) -> int:
        return self.fact_ttl_days * 86_400

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        return cls(
            tables=TableNames(
                users=_required(env, "USERS_TABLE"),
                user_activities=_required(env, "USER_ACTIVITIES_TABLE"),
                system_metrics=_required(env, "SYSTEM_METRICS_TABLE"),
                transactions=_required(env, "TRANSACTIONS_TABLE"),
                image_analysis=_required(env, "IMAGE_ANALYSIS_TABLE"),
            ),
            quarantine_bucket=_required(env, "QUARANTINE_BUCKET"),
            service_name=env.get("POWERTOOLS_SERVICE_NAME") or "projector",
            metrics_namespace=env.get("POWERTOOLS_METRICS_NAMESPACE") or "Pipelines",
            endpoint_url=env.get("AWS_ENDPOINT_URL") or None,
            fact_ttl_days=_positive_int(env, "FACT_TTL_DAYS", 90),
            ttl_attribute=env.get("TTL_ATTRIBUTE") or "ttl",
            retry=RetryPolicy(
                max_attempts=_positive_int(env, "WRITE_MAX_ATTEMPTS", 6),
                base_delay=_positive_int(env, "WRITE_BACKOFF_BASE_MS", 50) / 1000,
                max_delay=_positive_int(env, "WRITE_BACKOFF_MAX_MS", 2000) / 1000,
            ),
            write_concurrency=_positive_int(env, "WRITE_CONCURRENCY", 8),
        )


@lru_cache(maxsize=1)
def load_settings() -> Settings:
    """The settings of this process, read from the environment on first use."""
    return Settings.from_env()


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise SettingsError(f"environment variable {name} is not set")
    return value


def _positive_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise SettingsError(f"{name} must be a whole number, got {raw!r}") from exc
    if value < 1:
        raise SettingsError(f"{name} must be at least 1, got {value}")
    return value
