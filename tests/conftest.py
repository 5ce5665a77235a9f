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
* ``pipeline_target`` - the session's target (``PIPELINE_TARGET``, tests/targets.py).

The target switch: ``PIPELINE_TARGET=embedded`` (the default) changes nothing here. With
``localstack`` the session's environment points every client and Terraform at LocalStack
and the session's deployment goes there (``pipeline up --endpoint``); with ``aws`` it uses
the ambient credentials. A test the target cannot run is skipped with the reason: one
marked ``@pytest.mark.needs(...)`` or ``@pytest.mark.only_on(...)``, and one using a fixture
of :data:`FIXTURE_NEEDS` (``deployed`` needs what the root module applies).
"""

from __future__ import annotations

import os
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
from pipelines_local.infra.stack import terraform_root
from tests import targets
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
_TARGET_KEY = pytest.StashKey[targets.Target]()
_SKIPPED_KEY = pytest.StashKey[frozenset[str]]()
_SAVED_ENV_KEY = pytest.StashKey[dict[str, str | None]]()

# Fixtures whose use says what a test needs of its target (tests/targets.py).
FIXTURE_NEEDS: dict[str, tuple[str, ...]] = {
    "deployed": (targets.STACK,),
    "emulator": ("embedded_emulator",),
    "emulator_as_released": ("embedded_emulator",),
}


def pytest_configure(config: pytest.Config) -> None:
    """Read ``PIPELINE_TARGET`` (an unknown one fails the session here) and point the
    session's environment at the target: LocalStack's endpoint and test credentials, or, on
    AWS, no endpoint. The embedded target changes nothing."""
    try:
        target = targets.resolve(os.environ, probe=False)
    except targets.TargetError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[_TARGET_KEY] = target
    changes: dict[str, str | None] = {name: None for name in target.unset()}
    if target.name == targets.LOCALSTACK:
        changes.update({name: None for name in _FOREIGN_AWS_VARIABLES})
        changes.update(target.environment())
    config.stash[_SAVED_ENV_KEY] = {name: os.environ.get(name) for name in changes}
    for name, value in changes.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def pytest_unconfigure(config: pytest.Config) -> None:
    for name, value in config.stash.get(_SAVED_ENV_KEY, {}).items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def session_target(config: pytest.Config) -> targets.Target:
    """The session's target with what it lacks: LocalStack is waited for and read once."""
    target = config.stash[_TARGET_KEY]
    if target.name == targets.LOCALSTACK and target.edition is None:
        try:
            target = targets.resolve(os.environ)
        except targets.TargetError as exc:
            raise pytest.UsageError(str(exc)) from None
        config.stash[_TARGET_KEY] = target
    return target


def needs_of(item: pytest.Item) -> tuple[list[str], list[str]]:
    """What ``item`` needs (markers and fixtures) and the targets it is limited to."""
    needs = [str(n) for marker in item.iter_markers("needs") for n in marker.args]
    for fixture in getattr(item, "fixturenames", ()):
        needs.extend(FIXTURE_NEEDS.get(fixture, ()))
    only = [str(n) for marker in item.iter_markers("only_on") for n in marker.args]
    return needs, only


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip, with the reason, every test the session's target cannot run."""
    wanted = {item.nodeid: needs_of(item) for item in items}
    typos = sorted({n for needs, _ in wanted.values() for n in targets.unknown(needs)})
    typos += sorted({n for _, only in wanted.values() for n in only if n not in targets.TARGETS})
    if typos:
        raise pytest.UsageError(
            f"unknown capability or target in a needs/only_on marker: {', '.join(typos)} "
            f"(capabilities: {', '.join(targets.CAPABILITIES)}, {targets.STACK}; "
            f"targets: {', '.join(targets.TARGETS)})"
        )
    name = config.stash[_TARGET_KEY].name
    if not any(needs and (not only or name in only) for needs, only in wanted.values()):
        target = config.stash[_TARGET_KEY]  # nothing to resolve: LocalStack is not asked
    else:
        target = session_target(config)
    stack: frozenset[str] = frozenset()
    if target.lacking and any(targets.STACK in needs for needs, _ in wanted.values()):
        stack = targets.stack_needs(terraform_root())
    skipped = set()
    for item in items:
        needs, only = wanted[item.nodeid]
        reason = target.skip_reason(targets.expand(needs, stack), only)
        if reason:
            item.add_marker(pytest.mark.skip(reason=reason))
            skipped.add(item.nodeid)
    config.stash[_SKIPPED_KEY] = frozenset(skipped)


def pytest_report_header(config: pytest.Config) -> str | None:
    target = config.stash.get(_TARGET_KEY, None)
    if target is None or target.name == targets.EMBEDDED:
        return None
    return f"{targets.TARGET_VARIABLE}: {target.describe()}"


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start the session's deployment (and the demo) in the background once it is known to
    be needed, so that the tests that need neither run meanwhile (tests/session_stack.py)."""
    if shutil.which("terraform") is None or not provider_mirror().is_dir():
        return
    skipped = session.config.stash.get(_SKIPPED_KEY, frozenset())
    running = [item for item in session.items if item.nodeid not in skipped]
    needs = {name for item in running for name in getattr(item, "fixturenames", ())}
    if "deployed" not in needs:
        return
    demo = any(item.get_closest_marker("e2e") for item in running)
    target = session.config.stash[_TARGET_KEY]
    background = SessionStack(SESSION_WORKSPACE, with_demo=demo, endpoint_url=target.endpoint_url)
    background.start()
    session.config.stash[_SESSION_STACK_KEY] = background


def pytest_sessionfinish(session: pytest.Session) -> None:
    background = session.config.stash.get(_SESSION_STACK_KEY, None)
    if background is not None:
        down = background.stop()
        if down is not None and down.returncode != 0:
            reporter = session.config.pluginmanager.get_plugin("terminalreporter")
            if reporter is not None:
                reporter.write_line(
                    f"pipeline down of {background.workspace} at {background.endpoint_url} "
                    f"failed ({down.returncode}); its resources are left there:\n"
                    f"{down.stderr[-2000:]}",
                    red=True,
                )


@pytest.fixture(scope="session")
def pipeline_target(request: pytest.FixtureRequest) -> targets.Target:
    """The session's target (``PIPELINE_TARGET``), with what it lacks."""
    return session_target(request.config)


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
