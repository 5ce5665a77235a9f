"""Every consumer's settings, read from the environment variables Terraform sets."""

from __future__ import annotations

import pytest

from pipelines.consumers.config import (
    SETTINGS_BY_FUNCTION,
    AlerterSettings,
    ArchiverSettings,
    LakeCompactorSettings,
    LakeWriterSettings,
    ProjectorSettings,
    SettingsError,
    known_variables,
    required_variables,
)
from tests.kinesis_events import TABLES, settings_env


def test_projector_settings_read_every_variable() -> None:
    settings = ProjectorSettings.from_env(settings_env())
    assert settings.tables == TABLES
    assert settings.quarantine_bucket == "test-quarantine"
    assert settings.fact_ttl_seconds == 30 * 86_400
    assert settings.retry.max_attempts == 3
    assert settings.retry.base_delay == pytest.approx(0.001)
    assert settings.metrics_namespace == "PipelinesTest"
    assert settings.service_name == "projector"


def test_projector_defaults_apply_when_optional_variables_are_unset() -> None:
    env = {k: v for k, v in settings_env().items() if k.endswith(("_TABLE", "_BUCKET"))}
    settings = ProjectorSettings.from_env(env)
    assert settings.fact_ttl_days == 90
    assert settings.ttl_attribute == "ttl"
    assert settings.retry.max_attempts == 6
    assert settings.endpoint_url is None


@pytest.mark.parametrize(
    ("name", "value"), [("USERS_TABLE", ""), ("FACT_TTL_DAYS", "soon"), ("WRITE_MAX_ATTEMPTS", "0")]
)
def test_missing_or_malformed_projector_variables_are_refused(name: str, value: str) -> None:
    env = {**settings_env(), name: value}
    with pytest.raises(SettingsError, match=name):
        ProjectorSettings.from_env(env)


LAKE_ENV = {"LAKE_BUCKET": "lake", "GLUE_DATABASE": "db", "QUARANTINE_BUCKET": "quarantine"}


def test_lake_writer_defaults_fill_what_terraform_leaves_out() -> None:
    settings = LakeWriterSettings.from_env(LAKE_ENV)

    assert settings == LakeWriterSettings("lake", "db", "quarantine")
    assert settings.service_name == "lake-writer"
    assert settings.compression == "zstd"


def test_every_lake_writer_variable_is_read() -> None:
    env = {
        **LAKE_ENV,
        "LAKE_COMPRESSION": "SNAPPY",
        "POWERTOOLS_SERVICE_NAME": "lake",
        "POWERTOOLS_METRICS_NAMESPACE": "Test",
        "AWS_REGION": "eu-west-1",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:5000",
    }

    settings = LakeWriterSettings.from_env(env)

    assert (settings.compression, settings.glue_database) == ("snappy", "db")
    assert (settings.service_name, settings.metrics_namespace) == ("lake", "Test")
    assert (settings.region, settings.endpoint_url) == ("eu-west-1", "http://127.0.0.1:5000")


@pytest.mark.parametrize(
    "change",
    [
        {"LAKE_BUCKET": ""},
        {"LAKE_BUCKET": " "},
        {"QUARANTINE_BUCKET": ""},
        {"LAKE_COMPRESSION": "gzip"},
        {"GLUE_DATABASE": ""},
    ],
)
def test_a_missing_or_malformed_lake_writer_variable_is_refused(change: dict[str, str]) -> None:
    with pytest.raises(SettingsError):
        LakeWriterSettings.from_env({**LAKE_ENV, **change})


COMPACTOR_ENV = {"LAKE_BUCKET": "lake", "GLUE_DATABASE": "pipelines_dev_lake"}


def test_lake_compactor_defaults_fill_what_terraform_leaves_out() -> None:
    settings = LakeCompactorSettings.from_env(COMPACTOR_ENV)

    assert settings == LakeCompactorSettings("lake", "pipelines_dev_lake")
    assert settings.service_name == "lake-compactor"
    assert (settings.snapshot_retention_days, settings.snapshots_kept) == (7, 10)
    assert settings.orphan_min_age_hours == 72


def test_every_lake_compactor_variable_is_read() -> None:
    env = {
        **COMPACTOR_ENV,
        "SNAPSHOT_RETENTION_DAYS": "14",
        "SNAPSHOTS_KEPT": "20",
        "ORPHAN_MIN_AGE_HOURS": "96",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:5000",
    }

    settings = LakeCompactorSettings.from_env(env)

    assert (settings.snapshot_retention_days, settings.snapshots_kept) == (14, 20)
    assert settings.orphan_min_age_hours == 96
    assert (settings.region, settings.endpoint_url) == ("eu-west-1", "http://127.0.0.1:5000")


@pytest.mark.parametrize(
    "change",
    [
        {"GLUE_DATABASE": ""},
        {"SNAPSHOTS_KEPT": "0"},
        {"SNAPSHOT_RETENTION_DAYS": "a week"},
        {"ORPHAN_MIN_AGE_HOURS": "-1"},
    ],
)
def test_a_missing_or_malformed_lake_compactor_variable_is_refused(change: dict[str, str]) -> None:
    with pytest.raises(SettingsError):
        LakeCompactorSettings.from_env({**COMPACTOR_ENV, **change})


ARCHIVER_ENV = {"ARCHIVE_BUCKET": "archive", "QUARANTINE_BUCKET": "quarantine"}


def test_archiver_defaults_fill_what_terraform_leaves_out() -> None:
    settings = ArchiverSettings.from_env(ARCHIVER_ENV)

    assert settings == ArchiverSettings("archive", "quarantine")
    assert (settings.archive_prefix, settings.service_name) == ("events", "archiver")


def test_every_archiver_variable_is_read() -> None:
    env = {
        **ARCHIVER_ENV,
        "ARCHIVE_PREFIX": "/raw/",
        "POWERTOOLS_SERVICE_NAME": "arch",
        "POWERTOOLS_METRICS_NAMESPACE": "Test",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:5000",
    }

    settings = ArchiverSettings.from_env(env)

    assert settings == ArchiverSettings(
        "archive", "quarantine", "raw", "arch", "Test", "http://127.0.0.1:5000"
    )


@pytest.mark.parametrize("missing", sorted(ARCHIVER_ENV))
def test_a_missing_archiver_variable_is_named(missing: str) -> None:
    env = {k: v for k, v in ARCHIVER_ENV.items() if k != missing}
    with pytest.raises(SettingsError, match=missing):
        ArchiverSettings.from_env(env)


ALERTER_ENV = {
    "ALERTS_TABLE": "p-alerts",
    "METRIC_BASELINES_TABLE": "p-metric-baselines",
    "RECENT_TRANSACTIONS_TABLE": "p-recent-transactions",
    "ANOMALY_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:p-anomaly-alerts",
    "FRAUD_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:p-fraud-alerts",
    "QUARANTINE_BUCKET": "p-quarantine",
}


def test_alerter_settings_come_from_the_environment_with_defaults() -> None:
    settings = AlerterSettings.from_env(ALERTER_ENV)
    assert settings.alerts_table == "p-alerts"
    assert settings.fraud_topic_arn.endswith(":p-fraud-alerts")
    assert (settings.service_name, settings.alert_ttl_days, settings.state_concurrency) == (
        "alerter",
        90,
        8,
    )


@pytest.mark.parametrize("missing", sorted(ALERTER_ENV))
def test_a_missing_alerter_variable_is_named(missing: str) -> None:
    env = {k: v for k, v in ALERTER_ENV.items() if k != missing}
    with pytest.raises(SettingsError, match=missing):
        AlerterSettings.from_env(env)


def test_settings_are_frozen() -> None:
    settings = AlerterSettings.from_env(ALERTER_ENV)
    with pytest.raises(AttributeError):
        settings.alerts_table = "other"  # type: ignore[misc]


@pytest.mark.parametrize("function", sorted(SETTINGS_BY_FUNCTION))
def test_every_variable_a_reader_requires_is_one_it_reads(function: str) -> None:
    settings = SETTINGS_BY_FUNCTION[function]
    assert required_variables(settings) <= known_variables(settings)
    assert len({v.name for v in settings.VARIABLES}) == len(settings.VARIABLES)  # each once
