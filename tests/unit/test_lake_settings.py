"""The lake writer's settings, read from the environment Terraform sets."""

from __future__ import annotations

import pytest

from pipelines.lake_settings import LakeSettings
from pipelines.settings import SettingsError

ENV = {"LAKE_BUCKET": "lake", "ARCHIVE_BUCKET": "archive", "QUARANTINE_BUCKET": "quarantine"}


def test_defaults_fill_what_terraform_leaves_out() -> None:
    settings = LakeSettings.from_env(ENV)

    assert settings == LakeSettings("lake", "archive", "quarantine")
    assert settings.service_name == "lake-writer"
    assert settings.compression == "zstd"


def test_every_variable_is_read() -> None:
    env = {
        **ENV,
        "ARCHIVE_PREFIX": "/raw/",
        "LAKE_COMPRESSION": "SNAPPY",
        "WRITE_CONCURRENCY": "3",
        "POWERTOOLS_SERVICE_NAME": "lake",
        "POWERTOOLS_METRICS_NAMESPACE": "Test",
        "AWS_REGION": "eu-west-1",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:5000",
    }

    settings = LakeSettings.from_env(env)

    assert (settings.archive_prefix, settings.compression, settings.write_concurrency) == (
        "raw",
        "snappy",
        3,
    )
    assert (settings.service_name, settings.metrics_namespace) == ("lake", "Test")
    assert (settings.region, settings.endpoint_url) == ("eu-west-1", "http://127.0.0.1:5000")


@pytest.mark.parametrize(
    "change",
    [
        {"LAKE_BUCKET": ""},
        {"ARCHIVE_BUCKET": " "},
        {"QUARANTINE_BUCKET": ""},
        {"LAKE_COMPRESSION": "gzip"},
        {"WRITE_CONCURRENCY": "0"},
        {"WRITE_CONCURRENCY": "many"},
    ],
)
def test_a_missing_or_malformed_variable_is_refused(change: dict[str, str]) -> None:
    with pytest.raises(SettingsError):
        LakeSettings.from_env({**ENV, **change})
