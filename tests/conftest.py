"""Shared fixtures: the embedded emulator, started once per test session.

* ``emulator`` - the running :class:`~pipelines_local.emulator.EmulatorProcess` (session scope).
* ``aws_env`` - ``os.environ`` pointed at the emulator for one test (endpoint, test credentials,
  us-east-1); returns the variables it set.
* ``clean_emulator`` - the emulator, emptied (``/moto-api/reset``) before the test.
* ``aws_client`` - ``aws_client("kinesis")`` builds a boto3 client bound to the emulator.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config

from pipelines_local.emulator import EmulatorProcess, emulator_env, start_emulator

# Credentials and settings that would send a client somewhere other than the emulator.
_FOREIGN_AWS_VARIABLES = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
)

CLIENT_CONFIG = Config(retries={"max_attempts": 2, "mode": "standard"})


@pytest.fixture(scope="session")
def emulator() -> Iterator[EmulatorProcess]:
    """The embedded emulator, started once for the whole session and stopped at its end."""
    with start_emulator() as running:
        yield running


@pytest.fixture
def aws_env(emulator: EmulatorProcess, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Point the environment at the emulator for this test; return the variables set."""
    for name in _FOREIGN_AWS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    env = emulator_env(emulator.endpoint_url)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture
def clean_emulator(emulator: EmulatorProcess) -> EmulatorProcess:
    """The emulator with every resource forgotten, for a test that needs an empty account.

    The emulator is shared by the whole session: a test that resets it must not rely on
    resources other fixtures created (a Terraform apply, say) still being there afterwards.
    """
    emulator.reset()
    return emulator


@pytest.fixture
def aws_client(emulator: EmulatorProcess) -> Callable[[str], Any]:
    """A factory of boto3 clients bound to the emulator (few retries, so failures are quick)."""
    env = emulator.env()

    def make(service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=emulator.endpoint_url,
            region_name=env["AWS_DEFAULT_REGION"],
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            config=CLIENT_CONFIG,
        )

    return make
