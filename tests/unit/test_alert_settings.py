"""The alerter's settings, read from the environment variables Terraform sets."""

from __future__ import annotations

import pytest

from pipelines.alerts import AlerterSettings
from pipelines.settings import SettingsError

ENV = {
    "ALERTS_TABLE": "p-alerts",
    "METRIC_BASELINES_TABLE": "p-metric-baselines",
    "RECENT_TRANSACTIONS_TABLE": "p-recent-transactions",
    "ANOMALY_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:p-anomaly-alerts",
    "FRAUD_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:p-fraud-alerts",
    "QUARANTINE_BUCKET": "p-quarantine",
}


def test_settings_come_from_the_environment_with_defaults() -> None:
    settings = AlerterSettings.from_env(ENV)
    assert settings.alerts_table == "p-alerts"
    assert settings.fraud_topic_arn.endswith(":p-fraud-alerts")
    assert (settings.service_name, settings.alert_ttl_days, settings.state_concurrency) == (
        "alerter",
        90,
        8,
    )


@pytest.mark.parametrize("missing", sorted(ENV))
def test_a_missing_variable_is_named(missing: str) -> None:
    env = {k: v for k, v in ENV.items() if k != missing}
    with pytest.raises(SettingsError, match=missing):
        AlerterSettings.from_env(env)


def test_settings_are_frozen() -> None:
    settings = AlerterSettings.from_env(ENV)
    with pytest.raises(AttributeError):
        settings.alerts_table = "other"  # type: ignore[misc]
