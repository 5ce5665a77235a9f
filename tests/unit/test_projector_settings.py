"""The projector's settings come from the environment Terraform sets."""

from __future__ import annotations

import pytest

from pipelines.settings import Settings, SettingsError
from tests.kinesis_events import TABLES, settings_env


def test_settings_read_every_variable() -> None:
    settings = Settings.from_env(settings_env())
    assert settings.tables == TABLES
    assert settings.quarantine_bucket == "test-quarantine"
    assert settings.fact_ttl_seconds == 30 * 86_400
    assert settings.retry.max_attempts == 3
    assert settings.retry.base_delay == pytest.approx(0.001)
    assert settings.metrics_namespace == "PipelinesTest"
    assert settings.service_name == "projector"


def test_defaults_apply_when_optional_variables_are_unset() -> None:
    env = {k: v for k, v in settings_env().items() if k.endswith(("_TABLE", "_BUCKET"))}
    settings = Settings.from_env(env)
    assert settings.fact_ttl_days == 90
    assert settings.ttl_attribute == "ttl"
    assert settings.retry.max_attempts == 6
    assert settings.endpoint_url is None


@pytest.mark.parametrize(
    ("name", "value"), [("USERS_TABLE", ""), ("FACT_TTL_DAYS", "soon"), ("WRITE_MAX_ATTEMPTS", "0")]
)
def test_missing_or_malformed_variables_are_refused(name: str, value: str) -> None:
    env = {**settings_env(), name: value}
    with pytest.raises(SettingsError, match=name):
        Settings.from_env(env)
