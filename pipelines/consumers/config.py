"""Every consumer's configuration: each environment variable named once, one reader.

Terraform sets these variables on each function (``terraform/functions.tf``) and the
local runtime sets the same ones, from the function configuration Terraform created;
nothing else reads the environment. Each consumer's settings are a frozen object read
once, by :meth:`from_env`, and each settings class lists the variables it reads in
``VARIABLES`` (a test holds every function's Terraform ``environment`` map against it).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar, NamedTuple

from pipelines.adapters.retry import RetryPolicy
from pipelines.errors import MisconfigurationError


class SettingsError(MisconfigurationError):
    """A required environment variable is missing or malformed."""


class Variable(NamedTuple):
    """One environment variable: its name, what it holds, and its default (None: required)."""

    name: str
    doc: str
    default: str | None = None


# --- every variable, once ------------------------------------------------------------------

# Where AWS is, and what Powertools reads.
AWS_ENDPOINT_URL = Variable("AWS_ENDPOINT_URL", "the emulator's or LocalStack's endpoint", "")
AWS_REGION = Variable("AWS_REGION", "the region (Lambda sets it)", "")
AWS_DEFAULT_REGION = Variable("AWS_DEFAULT_REGION", "the region, if AWS_REGION is unset", "")
SERVICE_NAME = Variable(
    "POWERTOOLS_SERVICE_NAME", "service name of logs and metrics; the quarantine key prefix", ""
)
METRICS_NAMESPACE = Variable(
    "POWERTOOLS_METRICS_NAMESPACE", "CloudWatch namespace of the metrics", "Pipelines"
)

# Shared by consumers.
QUARANTINE_BUCKET = Variable("QUARANTINE_BUCKET", "where poison records are kept with their bytes")
TTL_ATTRIBUTE = Variable("TTL_ATTRIBUTE", "the tables' time-to-live attribute", "ttl")
WRITE_MAX_ATTEMPTS = Variable("WRITE_MAX_ATTEMPTS", "tries of a DynamoDB write", "6")
WRITE_BACKOFF_BASE_MS = Variable(
    "WRITE_BACKOFF_BASE_MS", "first backoff ceiling of a write retry (doubling)", "50"
)
WRITE_BACKOFF_MAX_MS = Variable("WRITE_BACKOFF_MAX_MS", "largest backoff of a write retry", "2000")
WRITE_CONCURRENCY = Variable("WRITE_CONCURRENCY", "writes in flight at once", "8")

# The projector's read models.
USERS_TABLE = Variable("USERS_TABLE", "users: latest profile state, with version")
USER_ACTIVITIES_TABLE = Variable("USER_ACTIVITIES_TABLE", "user_activities: user + time")
SYSTEM_METRICS_TABLE = Variable("SYSTEM_METRICS_TABLE", "system_metrics: one item a sample")
TRANSACTIONS_TABLE = Variable("TRANSACTIONS_TABLE", "transactions, indexed by user")
IMAGE_ANALYSIS_TABLE = Variable("IMAGE_ANALYSIS_TABLE", "image_analysis: latest labels an image")
FACT_TTL_DAYS = Variable("FACT_TTL_DAYS", "retention of facts on tables with a time to live", "90")

# The lake writer's bucket.
LAKE_BUCKET = Variable("LAKE_BUCKET", "the Iceberg tables' data and metadata, a prefix each")
GLUE_DATABASE = Variable("GLUE_DATABASE", "the Glue database of the lake's Iceberg tables")
LAKE_COMPRESSION = Variable("LAKE_COMPRESSION", "Parquet codec: zstd or snappy", "zstd")

# The lake compactor's retention of the tables' history.
SNAPSHOT_RETENTION_DAYS = Variable(
    "SNAPSHOT_RETENTION_DAYS", "days a lake table's snapshots stay readable by time travel", "7"
)
SNAPSHOTS_KEPT = Variable("SNAPSHOTS_KEPT", "snapshots a lake table keeps whatever their age", "10")
ORPHAN_MIN_AGE_HOURS = Variable(
    "ORPHAN_MIN_AGE_HOURS", "age an unreferenced file of a lake table reaches before deletion", "72"
)

# The archiver's bucket.
ARCHIVE_BUCKET = Variable("ARCHIVE_BUCKET", "Avro container files of the exact record bytes")
ARCHIVE_PREFIX = Variable("ARCHIVE_PREFIX", "key prefix of the archive's partitions", "events")

# The alerter's state and topics.
ALERTS_TABLE = Variable("ALERTS_TABLE", "alerts raised, one item per event and rule")
METRIC_BASELINES_TABLE = Variable("METRIC_BASELINES_TABLE", "rolling baselines per series")
RECENT_TRANSACTIONS_TABLE = Variable(
    "RECENT_TRANSACTIONS_TABLE", "each user's recent transactions (velocity rules)"
)
ANOMALY_TOPIC_ARN = Variable("ANOMALY_TOPIC_ARN", "SNS topic of metric anomalies")
FRAUD_TOPIC_ARN = Variable("FRAUD_TOPIC_ARN", "SNS topic of fraud alerts")
ALERT_TTL_DAYS = Variable("ALERT_TTL_DAYS", "how long alert records are kept", "90")
RECENT_TRANSACTIONS_TTL_HOURS = Variable(
    "RECENT_TRANSACTIONS_TTL_HOURS", "how long a transaction stays in the velocity window", "24"
)
STATE_CONCURRENCY = Variable("STATE_CONCURRENCY", "state reads in flight at once", "8")

COMPRESSIONS = ("zstd", "snappy")


# --- the one reader --------------------------------------------------------------------------


class Environment:
    """Reads variables out of an environment, with their defaults and checks."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._env = os.environ if environ is None else environ

    def text(self, variable: Variable, default: str | None = None) -> str:
        """The value, else ``default``, else the variable's default; required if none."""
        value = self._env.get(variable.name, "").strip()
        if value:
            return value
        fallback = default if default is not None else variable.default
        if fallback is None:
            raise SettingsError(f"environment variable {variable.name} is not set")
        return fallback

    def optional(self, variable: Variable) -> str | None:
        return self.text(variable) or None

    def positive_int(self, variable: Variable) -> int:
        raw = self.text(variable)
        try:
            value = int(raw)
        except ValueError as exc:
            raise SettingsError(f"{variable.name} must be a whole number, got {raw!r}") from exc
        if value < 1:
            raise SettingsError(f"{variable.name} must be at least 1, got {value}")
        return value

    def choice(self, variable: Variable, choices: tuple[str, ...]) -> str:
        value = self.text(variable).lower()
        if value not in choices:
            raise SettingsError(f"{variable.name} must be one of {choices}, got {value!r}")
        return value

    def retry(self) -> RetryPolicy:
        """The DynamoDB write retries: ``WRITE_MAX_ATTEMPTS`` and the backoff bounds."""
        return RetryPolicy(
            max_attempts=self.positive_int(WRITE_MAX_ATTEMPTS),
            base_delay=self.positive_int(WRITE_BACKOFF_BASE_MS) / 1000,
            max_delay=self.positive_int(WRITE_BACKOFF_MAX_MS) / 1000,
        )


_COMMON = (AWS_ENDPOINT_URL, SERVICE_NAME, METRICS_NAMESPACE)
_RETRIES = (WRITE_MAX_ATTEMPTS, WRITE_BACKOFF_BASE_MS, WRITE_BACKOFF_MAX_MS)


# --- each consumer's settings ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TableNames:
    """Physical DynamoDB table names of the projector's read models."""

    users: str
    user_activities: str
    system_metrics: str
    transactions: str
    image_analysis: str


@dataclass(frozen=True, slots=True)
class ProjectorSettings:
    """Everything the projector needs to know about its environment."""

    VARIABLES: ClassVar[tuple[Variable, ...]] = (
        *_COMMON,
        USERS_TABLE,
        USER_ACTIVITIES_TABLE,
        SYSTEM_METRICS_TABLE,
        TRANSACTIONS_TABLE,
        IMAGE_ANALYSIS_TABLE,
        QUARANTINE_BUCKET,
        FACT_TTL_DAYS,
        TTL_ATTRIBUTE,
        *_RETRIES,
        WRITE_CONCURRENCY,
    )

    tables: TableNames
    quarantine_bucket: str
    service_name: str = "projector"
    metrics_namespace: str = "Pipelines"
    endpoint_url: str | None = None
    fact_ttl_days: int = 90
    ttl_attribute: str = "ttl"
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    write_concurrency: int = 8

    @property
    def fact_ttl_seconds(self) -> int:
        return self.fact_ttl_days * 86_400

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ProjectorSettings:
        env = Environment(environ)
        return cls(
            tables=TableNames(
                users=env.text(USERS_TABLE),
                user_activities=env.text(USER_ACTIVITIES_TABLE),
                system_metrics=env.text(SYSTEM_METRICS_TABLE),
                transactions=env.text(TRANSACTIONS_TABLE),
                image_analysis=env.text(IMAGE_ANALYSIS_TABLE),
            ),
            quarantine_bucket=env.text(QUARANTINE_BUCKET),
            service_name=env.text(SERVICE_NAME, "projector"),
            metrics_namespace=env.text(METRICS_NAMESPACE),
            endpoint_url=env.optional(AWS_ENDPOINT_URL),
            fact_ttl_days=env.positive_int(FACT_TTL_DAYS),
            ttl_attribute=env.text(TTL_ATTRIBUTE),
            retry=env.retry(),
            write_concurrency=env.positive_int(WRITE_CONCURRENCY),
        )


@dataclass(frozen=True, slots=True)
class LakeWriterSettings:
    """Everything the lake writer needs to know about its environment."""

    VARIABLES: ClassVar[tuple[Variable, ...]] = (
        *_COMMON,
        AWS_REGION,
        AWS_DEFAULT_REGION,
        LAKE_BUCKET,
        GLUE_DATABASE,
        QUARANTINE_BUCKET,
        LAKE_COMPRESSION,
    )

    lake_bucket: str
    glue_database: str
    quarantine_bucket: str
    compression: str = "zstd"
    service_name: str = "lake-writer"
    metrics_namespace: str = "Pipelines"
    region: str = "us-east-1"
    endpoint_url: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> LakeWriterSettings:
        env = Environment(environ)
        return cls(
            lake_bucket=env.text(LAKE_BUCKET),
            glue_database=env.text(GLUE_DATABASE),
            quarantine_bucket=env.text(QUARANTINE_BUCKET),
            compression=env.choice(LAKE_COMPRESSION, COMPRESSIONS),
            service_name=env.text(SERVICE_NAME, "lake-writer"),
            metrics_namespace=env.text(METRICS_NAMESPACE),
            region=env.text(AWS_REGION) or env.text(AWS_DEFAULT_REGION) or "us-east-1",
            endpoint_url=env.optional(AWS_ENDPOINT_URL),
        )


@dataclass(frozen=True, slots=True)
class LakeCompactorSettings:
    """Everything the lake compactor needs to know about its environment."""

    VARIABLES: ClassVar[tuple[Variable, ...]] = (
        *_COMMON,
        AWS_REGION,
        AWS_DEFAULT_REGION,
        LAKE_BUCKET,
        GLUE_DATABASE,
        SNAPSHOT_RETENTION_DAYS,
        SNAPSHOTS_KEPT,
        ORPHAN_MIN_AGE_HOURS,
    )

    lake_bucket: str
    glue_database: str
    snapshot_retention_days: int = 7
    snapshots_kept: int = 10
    orphan_min_age_hours: int = 72
    service_name: str = "lake-compactor"
    metrics_namespace: str = "Pipelines"
    region: str = "us-east-1"
    endpoint_url: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> LakeCompactorSettings:
        env = Environment(environ)
        return cls(
            lake_bucket=env.text(LAKE_BUCKET),
            glue_database=env.text(GLUE_DATABASE),
            snapshot_retention_days=env.positive_int(SNAPSHOT_RETENTION_DAYS),
            snapshots_kept=env.positive_int(SNAPSHOTS_KEPT),
            orphan_min_age_hours=env.positive_int(ORPHAN_MIN_AGE_HOURS),
            service_name=env.text(SERVICE_NAME, "lake-compactor"),
            metrics_namespace=env.text(METRICS_NAMESPACE),
            region=env.text(AWS_REGION) or env.text(AWS_DEFAULT_REGION) or "us-east-1",
            endpoint_url=env.optional(AWS_ENDPOINT_URL),
        )


@dataclass(frozen=True, slots=True)
class ArchiverSettings:
    """Everything the archiver needs to know about its environment."""

    VARIABLES: ClassVar[tuple[Variable, ...]] = (
        *_COMMON,
        ARCHIVE_BUCKET,
        ARCHIVE_PREFIX,
        QUARANTINE_BUCKET,
    )

    archive_bucket: str
    quarantine_bucket: str
    archive_prefix: str = "events"
    service_name: str = "archiver"
    metrics_namespace: str = "Pipelines"
    endpoint_url: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ArchiverSettings:
        env = Environment(environ)
        return cls(
            archive_bucket=env.text(ARCHIVE_BUCKET),
            quarantine_bucket=env.text(QUARANTINE_BUCKET),
            archive_prefix=env.text(ARCHIVE_PREFIX).strip("/"),
            service_name=env.text(SERVICE_NAME, "archiver"),
            metrics_namespace=env.text(METRICS_NAMESPACE),
            endpoint_url=env.optional(AWS_ENDPOINT_URL),
        )


@dataclass(frozen=True, slots=True)
class AlerterSettings:
    """Everything the alerter needs to know about its environment."""

    VARIABLES: ClassVar[tuple[Variable, ...]] = (
        *_COMMON,
        ALERTS_TABLE,
        METRIC_BASELINES_TABLE,
        RECENT_TRANSACTIONS_TABLE,
        ANOMALY_TOPIC_ARN,
        FRAUD_TOPIC_ARN,
        QUARANTINE_BUCKET,
        ALERT_TTL_DAYS,
        RECENT_TRANSACTIONS_TTL_HOURS,
        TTL_ATTRIBUTE,
        *_RETRIES,
        STATE_CONCURRENCY,
    )

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
        env = Environment(environ)
        return cls(
            alerts_table=env.text(ALERTS_TABLE),
            metric_baselines_table=env.text(METRIC_BASELINES_TABLE),
            recent_transactions_table=env.text(RECENT_TRANSACTIONS_TABLE),
            anomaly_topic_arn=env.text(ANOMALY_TOPIC_ARN),
            fraud_topic_arn=env.text(FRAUD_TOPIC_ARN),
            quarantine_bucket=env.text(QUARANTINE_BUCKET),
            service_name=env.text(SERVICE_NAME, "alerter"),
            metrics_namespace=env.text(METRICS_NAMESPACE),
            endpoint_url=env.optional(AWS_ENDPOINT_URL),
            alert_ttl_days=env.positive_int(ALERT_TTL_DAYS),
            recent_transactions_ttl_hours=env.positive_int(RECENT_TRANSACTIONS_TTL_HOURS),
            ttl_attribute=env.text(TTL_ATTRIBUTE),
            retry=env.retry(),
            state_concurrency=env.positive_int(STATE_CONCURRENCY),
        )


Settings = (
    ProjectorSettings
    | LakeWriterSettings
    | LakeCompactorSettings
    | ArchiverSettings
    | AlerterSettings
)

# Each deployed function's settings, by its name in Terraform (``module "<name>"``).
SETTINGS_BY_FUNCTION: dict[str, type[Settings]] = {
    "projector": ProjectorSettings,
    "lake-writer": LakeWriterSettings,
    "lake-compactor": LakeCompactorSettings,
    "archiver": ArchiverSettings,
    "alerter": AlerterSettings,
}


def required_variables(settings: type[Settings]) -> set[str]:
    """The names ``settings`` cannot do without."""
    return {v.name for v in settings.VARIABLES if v.default is None}


def known_variables(settings: type[Settings]) -> set[str]:
    """Every name ``settings`` reads."""
    return {v.name for v in settings.VARIABLES}
