"""Shared fixtures: the deployed stack and the embedded emulator, each once per test session.

* ``deployed`` - the real root module applied once, by ``pipeline up``, to a workspace of
  its own on an embedded emulator of its own (session scope); a
  :class:`tests.stack.DeployedStack` with the workspace's Terraform outputs. Integration
  and contract tests take tables, buckets, functions and their environments from it.
* ``emulator`` - a plain emulator for tests of the emulator and the local runtime that
  create their own streams, queues and functions (session scope).
* ``emulator_as_released`` - an emulator running moto without any of our patches (session
  scope), for the ``*_as_released`` tests; ``moto_as_released("glue")`` builds a client for it.
* ``aws_env`` - ``os.environ`` pointed at the emulator for one test (endpoint, test credentials,
  us-east-1); returns the variables it set.
* ``aws_client`` - ``aws_client("kinesis")`` builds a boto3 client bound to the emulator.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config

from pipelines_local.emulator import EmulatorProcess, emulator_env, start_emulator
from pipelines_local.emulator.patches import patch_names
from pipelines_local.infra.cli_config import provider_mirror
from tests.session_stack import SessionStack
from tests.stack import DeployedStack

# The session's workspace: a name of its own, so that it never meets a developer's.
SESSION_WORKSPACE = f"it-{uuid.uuid4().hex[:6]}"

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


_SESSION_STACK_KEY = pytest.StashKey[SessionStack]()


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start the session's deployment (and the demo) in the background once it is known to
    be needed, so that the tests that need neither run meanwhile (tests/session_stack.py)."""
    if shutil.which("terraform") is None or not provider_mirror().is_dir():
        return
    needs = {name for item in session.items for name in getattr(item, "fixturenames", ())}
    if "deployed" not in needs:
        return
    demo = any(item.get_closest_marker("e2e") for item in session.items)
    background = SessionStack(SESSION_WORKSPACE, with_demo=demo)
    background.start()
    session.config.stash[_SESSION_STACK_KEY] = background


def pytest_sessionfinish(session: pytest.Session) -> None:
    background = session.config.stash.get(_SESSION_STACK_KEY, None)
    if background is not None:
        background.stop()


@pytest.fixture(scope="session")
def session_stack(request: pytest.FixtureRequest) -> SessionStack:
    """The background deployment started at collection (skips without Terraform)."""
    background = request.config.stash.get(_SESSION_STACK_KEY, None)
    if background is None:
        pytest.skip("terraform or its provider mirror is not installed")
    return background


@pytest.fixture(scope="session")
def deployed(session_stack: SessionStack) -> DeployedStack:
    """The root module applied once for the session; stopped, not destroyed, at its end.

    ``pipeline up`` runs in the background from the end of collection; this waits for it.
    Destroying is tested once, on a workspace of its own (tests/integration/
    test_terraform_stack.py); here the emulator holding the workspace simply stops.
    """
    return DeployedStack(session_stack.up(), session_stack.workspace_record())


def _point_at(endpoint_url: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Point the environment at ``endpoint_url`` for one test; return the variables set."""
    for name in _FOREIGN_AWS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    env = emulator_env(endpoint_url)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture
def deployed_env(deployed: DeployedStack, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Point the environment at the deployed stack's emulator for this test."""
    return _point_at(deployed.endpoint_url, monkeypatch)


@pytest.fixture(scope="session")
def emulator() -> Iterator[EmulatorProcess]:
    """The embedded emulator, started once for the whole session and stopped at its end."""
    with start_emulator() as running:
        yield running


@pytest.fixture
def aws_env(emulator: EmulatorProcess, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Point the environment at the plain emulator for this test; return the variables set."""
    return _point_at(emulator.endpoint_url, monkeypatch)


@pytest.fixture(scope="session")
def emulator_as_released() -> Iterator[EmulatorProcess]:
    """An emulator running moto without any of our patches, once for the whole session."""
    with start_emulator(disabled_patches=patch_names()) as unpatched:
        yield unpatched


@pytest.fixture
def aws_client(emulator: EmulatorProcess) -> Callable[[str], Any]:
    """A factory of boto3 clients bound to the emulator (few retries, so failures are quick)."""
    return client_factory(emulator)


@pytest.fixture
def moto_as_released(emulator_as_released: EmulatorProcess) -> Callable[[str], Any]:
    """A factory of boto3 clients bound to the emulator without our patches."""
    return client_factory(emulator_as_released)


def client_factory(emulator: EmulatorProcess) -> Callable[[str], Any]:
    """A factory of boto3 clients bound to ``emulator`` (few retries, so failures are quick)."""
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
