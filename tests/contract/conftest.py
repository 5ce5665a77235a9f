"""One contract suite per adapter, run against every backend (eventsourcing's pattern).

Each test of ``tests/contract`` takes the ``backend`` fixture and so runs twice: on moto
in-process (``in_process``) and on the embedded emulator over HTTP (``emulator``). Both
hold copies of the stores the deployed stack's functions use, defined as Terraform
defined them (read back from the session's deployment, before moto in-process takes over
botocore), so the suites assert what an adapter does against the real table shapes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.config import Config
from moto import mock_aws

from tests.stack import DeployedStack, Isolated

BACKENDS = ("in_process", "emulator")
FUNCTIONS = ("projector", "alerter", "lake-writer", "archiver")
# The adapters retry themselves; botocore must not retry behind them.
NO_SDK_RETRIES = Config(retries={"mode": "standard", "max_attempts": 1})
_REGION = "us-east-1"


@dataclass
class Backend:
    """Where one run of a contract suite talks to: clients and fresh copies of the stores."""

    name: str
    client: Callable[[str], Any]
    _deployed: DeployedStack

    def isolated(self, function: str) -> Isolated:
        """``function``'s environment as Terraform set it, on fresh copies in this backend."""
        return self._deployed.isolated(function, client=self.client)


@pytest.fixture(params=BACKENDS)
def backend(
    request: pytest.FixtureRequest, deployed: DeployedStack, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Backend]:
    if request.param == "emulator":
        remember_deployment(deployed)
        yield Backend(
            "emulator", lambda s: deployed.workspace.client(s, config=NO_SDK_RETRIES), deployed
        )
        return
    with in_process(deployed, monkeypatch) as client:
        yield Backend("in_process", client, deployed)


def remember_deployment(deployed: DeployedStack) -> None:
    """Read what the deployment holds (functions, tables) while it can still be reached."""
    for function in FUNCTIONS:
        deployed.function_config(function)
    assert deployed.table_definitions


@contextmanager
def in_process(
    deployed: DeployedStack, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[str], Any]]:
    """moto in-process for the duration; yields a client factory bound to it."""
    remember_deployment(deployed)
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": _REGION,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        yield lambda s: boto3.client(s, region_name=_REGION, config=NO_SDK_RETRIES)
