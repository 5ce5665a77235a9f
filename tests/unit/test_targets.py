"""The target switch (``PIPELINE_TARGET``) and the capability markers (tests/targets.py).

LocalStack is read from recorded ``/_localstack/info`` and ``/_localstack/health`` answers,
served by a local HTTP server where the waiting is under test; nothing of AWS is mocked.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests import targets
from tests.targets import TargetError

pytest_plugins = ("pytester",)

ROOT = Path(__file__).resolve().parents[2]

# What LocalStack 4.x answers on /_localstack/info, community image and pro image.
COMMUNITY_INFO = {
    "version": "4.0.3:7ea2ae4b1",
    "edition": "community",
    "is_license_activated": False,
    "session_id": "5a8f6f47-1e4b-4c43-9d0e-8b2f8c4f1a21",
    "machine_id": "dkr_1f0c3a2b9e7d",
    "system": "linux",
    "is_docker": True,
    "server_time_utc": "2026-03-01T10:00:00",
    "uptime": 12,
}
PRO_INFO = {
    "version": "4.14.0:0b3c1e2a4",
    "edition": "pro",
    "is_license_activated": True,
    "session_id": "b7c1f0de-51f6-4f6e-8a7e-3c9d2e5f7a10",
    "machine_id": "dkr_8d2e4f6a1b3c",
    "system": "linux",
    "is_docker": True,
    "server_time_utc": "2026-03-01T10:00:00",
    "uptime": 40,
}
# /_localstack/health of the community image (no Pro services listed).
COMMUNITY_HEALTH: dict[str, Any] = {
    "services": {
        "cloudwatch": "available",
        "dynamodb": "running",
        "events": "available",
        "iam": "available",
        "kinesis": "running",
        "kms": "available",
        "lambda": "available",
        "logs": "available",
        "s3": "running",
        "scheduler": "available",
        "sns": "available",
        "sqs": "available",
        "sts": "available",
        "apigateway": "available",
    },
    "edition": "community",
    "version": "4.0.3",
}
ENDPOINT = "http://localhost:4566"


# --- choosing the target ------------------------------------------------------------------------


def test_the_default_target_is_the_embedded_emulator_and_lacks_nothing() -> None:
    target = targets.resolve({})

    assert target.name == "embedded"
    assert target.endpoint_url is None
    assert target.skip_reason(needs=list(targets.CAPABILITIES)) is None
    assert target.environment() == {} and target.unset() == ()


def test_an_unknown_target_fails_with_the_ones_there_are() -> None:
    with pytest.raises(TargetError, match=r"PIPELINE_TARGET='staging' is not a target: use one"):
        targets.target_name({"PIPELINE_TARGET": "staging"})


def test_target_names_ignore_case_and_spaces() -> None:
    assert targets.target_name({"PIPELINE_TARGET": " LocalStack "}) == "localstack"
    assert targets.target_name({"PIPELINE_TARGET": ""}) == "embedded"


def test_localstack_is_at_4566_unless_localstack_endpoint_says_otherwise() -> None:
    assert targets.localstack_endpoint({}) == "http://localhost:4566"
    moved = targets.localstack_endpoint({"LOCALSTACK_ENDPOINT": "http://ls.internal:4567/"})
    assert moved == "http://ls.internal:4567"


def test_localstack_points_every_client_and_terraform_at_its_endpoint() -> None:
    target = targets.localstack_target(ENDPOINT, COMMUNITY_INFO)

    env = target.environment()

    assert env["AWS_ENDPOINT_URL"] == ENDPOINT
    assert env["AWS_ACCESS_KEY_ID"] == env["AWS_SECRET_ACCESS_KEY"] == "test"
    assert env["AWS_REGION"] == "us-east-1"


def test_aws_uses_the_ambient_credentials_and_no_endpoint() -> None:
    target = targets.resolve({"PIPELINE_TARGET": "aws"})

    assert target.endpoint_url is None
    assert target.environment() == {}
    assert target.unset() == ("AWS_ENDPOINT_URL",)
    assert target.has("glue") and target.has("lambda_exec")
    assert not target.has("pipeline_up") and not target.has("local_runtime")


# --- what each edition lacks ------------------------------------------------------------------


def test_community_edition_lacks_the_pro_services_and_says_so() -> None:
    target = targets.localstack_target(ENDPOINT, COMMUNITY_INFO)

    assert (target.edition, target.version) == ("community", "4.0.3")
    assert target.skip_reason(needs=["athena"]) == (
        "needs athena: LocalStack community edition has no Athena (a Pro service)"
    )
    for pro in ("glue", "athena", "cognito", "apigatewayv2"):
        assert not target.has(pro), pro
    for community in ("kinesis", "dynamodb", "s3", "sqs", "sns", "kms", "iam", "lambda"):
        assert target.has(community), community
    assert target.has("logs") and target.has("scheduler") and target.has("apigateway")
    assert target.has("lambda_exec") and target.has("pipeline_up")


def test_on_localstack_the_mappings_are_its_own_and_the_emulator_is_not_there() -> None:
    target = targets.localstack_target(ENDPOINT, PRO_INFO)

    reason = target.skip_reason(needs=["local_runtime", "embedded_emulator"])

    assert reason is not None
    assert reason.startswith("needs local_runtime: LocalStack runs the event source mappings")
    assert "; embedded_emulator: the target is LocalStack" in reason


def test_pro_edition_has_glue_athena_and_cognito() -> None:
    target = targets.localstack_target(ENDPOINT, PRO_INFO)

    assert target.edition == "pro"
    assert target.skip_reason(needs=["glue", "athena", "cognito", "apigatewayv2"]) is None


def test_a_pro_image_without_an_activated_license_counts_as_community() -> None:
    info = {**PRO_INFO, "is_license_activated": False}

    target = targets.localstack_target(ENDPOINT, info)

    assert target.lacking["glue"] == (
        "LocalStack pro without an activated license has no Glue (a Pro service)"
    )


def test_an_edition_this_table_does_not_know_is_taken_as_community() -> None:
    target = targets.localstack_target(ENDPOINT, {**COMMUNITY_INFO, "edition": "unknown"})

    assert not target.has("glue")
    assert "LocalStack edition 'unknown' (taken as community)" in target.lacking["glue"]


def test_health_removes_what_localstack_does_not_serve() -> None:
    health = {
        **COMMUNITY_HEALTH,
        "services": {**COMMUNITY_HEALTH["services"], "scheduler": "disabled"},
    }
    del health["services"]["sns"]

    target = targets.localstack_target(ENDPOINT, COMMUNITY_INFO, health)

    assert (
        target.lacking["scheduler"] == f"LocalStack at {ENDPOINT} reports scheduler as 'disabled'"
    )
    assert target.lacking["sns"] == f"LocalStack at {ENDPOINT} does not list sns in its health"
    assert target.has("kinesis") and target.has("lambda_exec")
    # The edition's reason is kept where both say a service is missing.
    assert target.lacking["glue"].startswith("LocalStack community edition has no Glue")


def test_info_falls_back_to_the_health_answers_edition() -> None:
    target = targets.localstack_target(ENDPOINT, {}, COMMUNITY_HEALTH)

    assert (target.edition, target.version) == ("community", "4.0.3")


# --- markers --------------------------------------------------------------------------------


def test_only_on_names_the_targets_and_the_sessions() -> None:
    embedded = targets.resolve({})

    assert embedded.skip_reason(only_on=["localstack"]) == (
        "runs only with PIPELINE_TARGET=localstack (this session's target is embedded)"
    )
    assert embedded.skip_reason(only_on=["embedded", "aws"]) is None


def test_stack_stands_for_every_service_the_root_module_applies() -> None:
    types = targets.resource_types(ROOT / "terraform")
    needs = targets.stack_needs(ROOT / "terraform")

    assert types, "no resources found under terraform/"
    assert [t for t in types if targets.capability_of(t) is None] == []
    assert {"pipeline_up", "glue", "athena", "kinesis", "lambda", "scheduler"} <= needs
    assert targets.expand(["stack", "lambda_exec"], needs)[-1] == "lambda_exec"
    assert "stack" not in targets.expand(["stack"], needs)


def test_marker_names_that_are_no_capability_are_found() -> None:
    assert targets.unknown(["glue", "stack", "athens"]) == ["athens"]


# --- waiting for LocalStack -----------------------------------------------------------------


class _Recorded(BaseHTTPRequestHandler):
    answers: Mapping[str, tuple[int, Any]] = {}

    def do_GET(self) -> None:
        status, body = self.answers.get(self.path, (404, {"error": "not found"}))
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        return None


def _serve(answers: Mapping[str, tuple[int, Any]]) -> Iterator[str]:
    handler = type("Answers", (_Recorded,), {"answers": answers})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def starting_localstack() -> Iterator[str]:
    """Something on a free port whose health says it is not ready."""
    yield from _serve({"/_localstack/health": (503, {"services": {}})})


@pytest.fixture
def community_localstack() -> Iterator[str]:
    yield from _serve(
        {
            "/_localstack/health": (200, COMMUNITY_HEALTH),
            "/_localstack/info": (200, COMMUNITY_INFO),
        }
    )


@pytest.fixture
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def test_the_health_wait_gives_up_in_time_and_says_what_answered(starting_localstack: str) -> None:
    started = time.monotonic()

    with pytest.raises(TargetError) as raised:
        targets.wait_for_health(starting_localstack, timeout=0.5, interval=0.05)

    assert time.monotonic() - started < 5
    message = str(raised.value)
    assert f"LocalStack is not ready at {starting_localstack}/_localstack/health" in message
    assert "after 0.5 s: it answered HTTP 503" in message
    assert "docker compose -f docker-compose.localstack.yml up -d --wait" in message


def test_the_health_wait_says_when_nothing_answers(free_port: int) -> None:
    with pytest.raises(TargetError, match=r"after 0.3 s: nothing answered \("):
        targets.wait_for_health(f"http://127.0.0.1:{free_port}", timeout=0.3, interval=0.05)


def test_resolving_localstack_reads_its_edition_from_info(community_localstack: str) -> None:
    env = {"PIPELINE_TARGET": "localstack", "LOCALSTACK_ENDPOINT": community_localstack}

    target = targets.resolve(env)

    assert (target.name, target.endpoint_url) == ("localstack", community_localstack)
    assert target.edition == "community"
    assert target.describe() == f"localstack community 4.0.3 at {community_localstack}"
    assert not target.has("athena")


def test_a_wait_that_is_not_a_number_is_an_error() -> None:
    with pytest.raises(TargetError, match="LOCALSTACK_WAIT_SECONDS='soon'"):
        targets.wait_seconds({"LOCALSTACK_WAIT_SECONDS": "soon"})


# --- the markers in a session (tests/conftest.py's hooks) -----------------------------------

_SESSION_TESTS = """
import pytest

@pytest.mark.needs("glue")
def test_needs_glue():
    pass

@pytest.mark.needs("kinesis", "lambda_exec")
def test_needs_kinesis():
    pass

@pytest.mark.only_on("aws")
def test_only_on_aws():
    pass

def test_needs_nothing():
    pass
"""


@pytest.fixture
def session(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest(
        "from tests.conftest import (  # noqa: F401\n"
        "    pytest_collection_modifyitems, pytest_configure, pytest_unconfigure\n"
        ")\n"
    )
    pytester.makeini(
        "[pytest]\nmarkers =\n    needs(*capabilities): needs\n    only_on(*targets): only on\n"
    )
    pytester.makepyfile(test_session=_SESSION_TESTS)
    return pytester


def _outcomes(session: pytest.Pytester, *args: str) -> dict[str, str]:
    """Each test's outcome: ``passed``, or the reason it was skipped."""
    recorded = session.inline_run(*args)
    out = {}
    for report in recorded.getreports("pytest_runtest_logreport"):
        name = report.nodeid.rsplit("::", 1)[-1]
        if report.skipped:
            out[name] = str(report.longrepr[2]).removeprefix("Skipped: ")  # type: ignore[index]
        elif report.when == "call":
            out[name] = report.outcome
    return out


def test_a_test_localstack_community_cannot_run_is_skipped_with_the_reason(
    session: pytest.Pytester, community_localstack: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIPELINE_TARGET", "localstack")
    monkeypatch.setenv("LOCALSTACK_ENDPOINT", community_localstack)

    outcomes = _outcomes(session, "--strict-markers")

    assert outcomes == {
        "test_needs_glue": "needs glue: LocalStack community edition has no Glue (a Pro service)",
        "test_needs_kinesis": "passed",
        "test_only_on_aws": "runs only with PIPELINE_TARGET=aws "
        "(this session's target is localstack)",
        "test_needs_nothing": "passed",
    }


def test_the_embedded_target_runs_every_test_that_needs_something(
    session: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PIPELINE_TARGET", raising=False)

    outcomes = _outcomes(session)

    assert outcomes == {
        "test_needs_glue": "passed",
        "test_needs_kinesis": "passed",
        "test_only_on_aws": "runs only with PIPELINE_TARGET=aws "
        "(this session's target is embedded)",
        "test_needs_nothing": "passed",
    }


def test_an_unknown_target_fails_the_session_at_once(
    session: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIPELINE_TARGET", "staging")

    result = session.runpytest()

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*PIPELINE_TARGET='staging' is not a target*"])


def test_a_localstack_session_with_nothing_listening_fails_with_how_to_start_it(
    session: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, free_port: int
) -> None:
    monkeypatch.setenv("PIPELINE_TARGET", "localstack")
    monkeypatch.setenv("LOCALSTACK_ENDPOINT", f"http://127.0.0.1:{free_port}")
    monkeypatch.setenv("LOCALSTACK_WAIT_SECONDS", "0.3")

    result = session.runpytest()

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*LocalStack is not ready at http://127.0.0.1:*/_localstack/health after 0.3 s*"]
    )
    result.stderr.fnmatch_lines(["*docker compose -f docker-compose.localstack.yml up -d --wait*"])


def test_a_marker_naming_no_capability_fails_the_session(
    session: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PIPELINE_TARGET", raising=False)
    session.makepyfile(
        test_typo="import pytest\n\n@pytest.mark.needs('athens')\ndef test_x():\n    pass\n"
    )

    result = session.runpytest()

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unknown capability or target*athens*"])
