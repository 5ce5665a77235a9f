"""The target a test session runs against: ``PIPELINE_TARGET=embedded|localstack|aws``.

* ``embedded`` (the default): the embedded emulator that ``pipeline up`` starts, with the
  local runtime driving the handlers. It has every capability the suite asks for.
* ``localstack``: LocalStack at ``$LOCALSTACK_ENDPOINT`` (``http://localhost:4566``). Every
  client and Terraform go there (``AWS_ENDPOINT_URL``, test credentials). The session waits,
  for at most ``$LOCALSTACK_WAIT_SECONDS``, until ``/_localstack/health`` answers, and takes
  the edition from ``/_localstack/info``.
* ``aws``: the ambient credentials and no endpoint.

A test says what it needs with ``@pytest.mark.needs("glue", ...)`` (names in
:data:`CAPABILITIES`), and a test that means something on some targets only says so with
``@pytest.mark.only_on("localstack")``. tests/conftest.py skips every test its target cannot
run, with the reason :meth:`Target.skip_reason` gives. The tables and the resolution here are
pure; the only I/O is reading the two LocalStack endpoints and the Terraform files.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TARGET_VARIABLE = "PIPELINE_TARGET"
ENDPOINT_VARIABLE = "LOCALSTACK_ENDPOINT"
WAIT_VARIABLE = "LOCALSTACK_WAIT_SECONDS"

EMBEDDED = "embedded"
LOCALSTACK = "localstack"
AWS = "aws"
TARGETS = (EMBEDDED, LOCALSTACK, AWS)

DEFAULT_LOCALSTACK_ENDPOINT = "http://localhost:4566"
DEFAULT_WAIT_SECONDS = 15.0
START_LOCALSTACK = "docker compose -f docker-compose.localstack.yml up -d --wait"

# What a test may need of its target.
CAPABILITIES: Mapping[str, str] = {
    # AWS services: the API answers and Terraform applies their resources.
    "kinesis": "Kinesis Data Streams",
    "dynamodb": "DynamoDB",
    "s3": "S3",
    "sqs": "SQS",
    "sns": "SNS",
    "kms": "KMS",
    "iam": "IAM",
    "lambda": "Lambda",
    "logs": "CloudWatch Logs",
    "cloudwatch": "CloudWatch",
    "events": "EventBridge",
    "scheduler": "EventBridge Scheduler",
    "apigateway": "API Gateway v1 (REST APIs)",
    "apigatewayv2": "API Gateway v2 (HTTP APIs)",
    "cognito": "Cognito",
    "glue": "Glue",
    "athena": "Athena",
    # What the target does besides answering the APIs.
    "lambda_exec": "deployed functions run on their event sources",
    "local_runtime": "event source mappings that stay metadata, for the local runtime to drive",
    "embedded_emulator": "the embedded emulator itself (its launcher, patches, /moto-api)",
    "pipeline_up": "`pipeline up` deploying the root module",
}

# ``needs("stack")``: whatever the root module's resources need (see :func:`stack_needs`).
STACK = "stack"

# Terraform resource types by prefix, longest first where two share one.
RESOURCE_CAPABILITIES: tuple[tuple[str, str], ...] = (
    ("aws_cloudwatch_log_", "logs"),
    ("aws_cloudwatch_event_", "events"),
    ("aws_cloudwatch_", "cloudwatch"),
    ("aws_kinesis_", "kinesis"),
    ("aws_dynamodb_", "dynamodb"),
    ("aws_s3_", "s3"),
    ("aws_sqs_", "sqs"),
    ("aws_sns_", "sns"),
    ("aws_kms_", "kms"),
    ("aws_iam_", "iam"),
    ("aws_lambda_", "lambda"),
    ("aws_scheduler_", "scheduler"),
    ("aws_api_gateway_", "apigateway"),
    ("aws_apigatewayv2_", "apigatewayv2"),
    ("aws_cognito_", "cognito"),
    ("aws_glue_", "glue"),
    ("aws_athena_", "athena"),
)

# --- what each target lacks, and why -------------------------------------------------------
#
# The embedded emulator (pipelines_local/emulator, docs/adr/0001-emulator-patches.md,
# docs/deploying.md): moto 5.2.5 applies and reads back every resource type above; Athena
# answers with no rows (SQL runs on DuckDB) and schedules never fire, which no marked test
# relies on. ``lambda_exec`` there is the local runtime (pipelines_local/runtime) invoking
# the handlers (docs/adr/0002-local-runtime.md), not moto running Lambdas.
EMBEDDED_LACKS: Mapping[str, str] = {}

# LocalStack, from its coverage pages (docs.localstack.cloud/references/coverage/):
# "<service> is supported by LocalStack in the community image" for Kinesis, DynamoDB, S3,
# SQS, SNS, KMS, IAM, Lambda, CloudWatch Logs, CloudWatch, EventBridge, EventBridge Scheduler
# (added to the community image in 2.3, API only: its user guide says schedules do not fire)
# and API Gateway v1; "supported by LocalStack only in the pro image" for API Gateway v2,
# Cognito User Pools (cognito-idp), Glue and Athena. Lambda functions run in Docker
# containers LocalStack starts (the compose file mounts the Docker socket for it), and
# LocalStack runs the event source mappings itself.
_LOCALSTACK_ALWAYS_LACKS: Mapping[str, str] = {
    "local_runtime": "LocalStack runs the event source mappings itself, so the local runtime "
    "cannot drive them",
    "embedded_emulator": "the target is LocalStack, not the embedded emulator",
}
PRO_ONLY = ("apigatewayv2", "cognito", "glue", "athena")
PRO_EDITIONS = ("pro", "enterprise")

AWS_LACKS: Mapping[str, str] = {
    "local_runtime": "on AWS, Lambda runs the event source mappings itself",
    "embedded_emulator": "the target is AWS, not the embedded emulator",
    "pipeline_up": "`pipeline up` deploys to the embedded emulator or an endpoint; AWS is "
    "deployed with Terraform and its state backend (docs/deploying.md)",
}

# LocalStack's names in /_localstack/health, where they differ from ours; capabilities that
# are no one service (lambda_exec aside) are not checked there.
_HEALTH_NAMES: Mapping[str, str] = {"cognito": "cognito-idp", "lambda_exec": "lambda"}
_NOT_IN_HEALTH = ("apigatewayv2", "local_runtime", "embedded_emulator", "pipeline_up")
# States of a service LocalStack will not serve (its ServiceState values).
_NOT_SERVED = ("disabled", "error", "stopped")


class TargetError(Exception):
    """The target is unknown, or LocalStack cannot be reached or read."""


@dataclass(frozen=True)
class Target:
    """Where the session runs, and what it lacks there (capability -> why)."""

    name: str
    endpoint_url: str | None = None
    edition: str | None = None
    version: str | None = None
    lacking: Mapping[str, str] = field(default_factory=dict)

    def has(self, capability: str) -> bool:
        return capability not in self.lacking

    def missing(self, needs: Iterable[str]) -> list[str]:
        """``needs`` this target lacks, each as ``"<capability>: <why>"``."""
        return [f"{n}: {self.lacking[n]}" for n in dict.fromkeys(needs) if n in self.lacking]

    def skip_reason(self, needs: Iterable[str] = (), only_on: Iterable[str] = ()) -> str | None:
        """Why a test with these markers cannot run here, or None if it can."""
        only = tuple(only_on)
        if only and self.name not in only:
            return (
                f"runs only with {TARGET_VARIABLE}={' or '.join(only)} "
                f"(this session's target is {self.name})"
            )
        missing = self.missing(needs)
        return "needs " + "; ".join(missing) if missing else None

    def environment(self) -> dict[str, str]:
        """Variables the session sets: where every client and Terraform go."""
        if self.name == LOCALSTACK and self.endpoint_url:
            from pipelines_local.emulator import emulator_env

            return emulator_env(self.endpoint_url)
        return {}

    def unset(self) -> tuple[str, ...]:
        """Variables the session removes: on AWS, an endpoint left over from elsewhere."""
        return ("AWS_ENDPOINT_URL",) if self.name == AWS else ()

    def describe(self) -> str:
        if self.name != LOCALSTACK:
            return self.name
        known = [p for p in (self.edition, self.version) if p]
        return " ".join(["localstack", *known, "at", str(self.endpoint_url)])


# --- resolving ------------------------------------------------------------------------------


def target_name(environ: Mapping[str, str]) -> str:
    """``$PIPELINE_TARGET`` (default ``embedded``); an unknown value is a :class:`TargetError`."""
    value = environ.get(TARGET_VARIABLE, "").strip().lower() or EMBEDDED
    if value not in TARGETS:
        raise TargetError(
            f"{TARGET_VARIABLE}={environ.get(TARGET_VARIABLE)!r} is not a target: "
            f"use one of {', '.join(TARGETS)} (default {EMBEDDED})"
        )
    return value


def localstack_endpoint(environ: Mapping[str, str]) -> str:
    """``$LOCALSTACK_ENDPOINT``, else ``http://localhost:4566``."""
    return (environ.get(ENDPOINT_VARIABLE) or DEFAULT_LOCALSTACK_ENDPOINT).rstrip("/")


def wait_seconds(environ: Mapping[str, str]) -> float:
    raw = environ.get(WAIT_VARIABLE)
    try:
        return float(raw) if raw else DEFAULT_WAIT_SECONDS
    except ValueError:
        raise TargetError(f"{WAIT_VARIABLE}={raw!r} is not a number of seconds") from None


def resolve(environ: Mapping[str, str], *, probe: bool = True) -> Target:
    """The session's target. For LocalStack with ``probe``, wait for it and read its edition;
    without, its capabilities are not known yet (only its name and endpoint)."""
    name = target_name(environ)
    if name == EMBEDDED:
        return Target(EMBEDDED, lacking=dict(EMBEDDED_LACKS))
    if name == AWS:
        return Target(AWS, lacking=dict(AWS_LACKS))
    endpoint = localstack_endpoint(environ)
    if not probe:
        return Target(LOCALSTACK, endpoint)
    health = wait_for_health(endpoint, wait_seconds(environ))
    return localstack_target(endpoint, read_info(endpoint, health), health)


def localstack_target(
    endpoint: str, info: Mapping[str, Any], health: Mapping[str, Any] | None = None
) -> Target:
    """LocalStack at ``endpoint`` from its recorded ``/_localstack/info`` (and health) answer."""
    edition = str(info.get("edition") or (health or {}).get("edition") or "unknown").lower()
    version = str(info.get("version") or (health or {}).get("version") or "").split(":")[0]
    return Target(
        LOCALSTACK,
        endpoint,
        edition=edition,
        version=version or None,
        lacking=localstack_lacks(info, health, endpoint),
    )


def localstack_lacks(
    info: Mapping[str, Any], health: Mapping[str, Any] | None = None, endpoint: str = ""
) -> dict[str, str]:
    """What LocalStack lacks, by its edition (``/_localstack/info``) and, where it lists its
    services, by what ``/_localstack/health`` says it serves."""
    edition = str(info.get("edition") or (health or {}).get("edition") or "unknown").lower()
    lacking = dict(_LOCALSTACK_ALWAYS_LACKS)
    licensed = edition in PRO_EDITIONS and info.get("is_license_activated") is not False
    if not licensed:
        if edition == "community":
            label = "LocalStack community edition"
        elif edition in PRO_EDITIONS:
            label = f"LocalStack {edition} without an activated license"
        else:
            label = f"LocalStack edition {edition!r} (taken as community)"
        for capability in PRO_ONLY:
            lacking[capability] = f"{label} has no {CAPABILITIES[capability]} (a Pro service)"
    services = (health or {}).get("services")
    if isinstance(services, Mapping):
        where = f" at {endpoint}" if endpoint else ""
        for capability in CAPABILITIES:
            if capability in lacking or capability in _NOT_IN_HEALTH:
                continue
            service = _HEALTH_NAMES.get(capability, capability)
            state = services.get(service)
            if state is None:
                lacking[capability] = f"LocalStack{where} does not list {service} in its health"
            elif str(state).lower() in _NOT_SERVED:
                lacking[capability] = f"LocalStack{where} reports {service} as {state!r}"
    return lacking


# --- what the root module needs ---------------------------------------------------------------

_RESOURCE = re.compile(r'^\s*resource\s+"(aws_[a-z0-9_]+)"', re.MULTILINE)


def resource_types(terraform_dir: Path) -> set[str]:
    """Every ``resource "aws_..."`` type in the ``.tf`` files under ``terraform_dir``."""
    found: set[str] = set()
    for path in sorted(terraform_dir.rglob("*.tf")):
        if ".terraform" not in path.parts:
            found.update(_RESOURCE.findall(path.read_text()))
    return found


def capability_of(resource_type: str) -> str | None:
    for prefix, capability in RESOURCE_CAPABILITIES:
        if resource_type.startswith(prefix):
            return capability
    return None


def stack_needs(terraform_dir: Path) -> frozenset[str]:
    """What deploying the root module needs: ``pipeline up`` and each of its services."""
    found = {capability_of(t) for t in resource_types(terraform_dir)}
    return frozenset({"pipeline_up", *(c for c in found if c is not None)})


def expand(needs: Iterable[str], stack: Iterable[str] = ()) -> list[str]:
    """``needs`` with ``stack`` replaced by what the root module needs, in order, once each."""
    out: list[str] = []
    for need in needs:
        out.extend(sorted(stack) if need == STACK else [need])
    return list(dict.fromkeys(out))


def unknown(needs: Iterable[str]) -> list[str]:
    """Names in ``needs`` that are no capability (a typo in a marker)."""
    return [n for n in needs if n != STACK and n not in CAPABILITIES]


# --- LocalStack's own endpoints ----------------------------------------------------------------

# LocalStack is on this machine or the CI runner's: never through a proxy.
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _get_json(url: str, timeout: float) -> tuple[int, Any]:
    try:
        with _NO_PROXY.open(url, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, None


def wait_for_health(endpoint: str, timeout: float, interval: float = 0.5) -> dict[str, Any]:
    """``/_localstack/health`` once it answers 200 with JSON; a :class:`TargetError` saying what
    answered (or that nothing did) and how to start LocalStack after ``timeout`` seconds."""
    url = f"{endpoint}/_localstack/health"
    deadline = time.monotonic() + timeout
    last = "nothing answered"
    while True:
        try:
            status, body = _get_json(url, timeout=min(3.0, max(timeout, 0.1)))
            if status == 200 and isinstance(body, dict):
                return body
            last = f"it answered HTTP {status}" + ("" if status != 200 else " without JSON")
        except (OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            last = f"nothing answered ({reason})"
        if time.monotonic() + interval > deadline:
            raise TargetError(
                f"{TARGET_VARIABLE}=localstack: LocalStack is not ready at {url} after "
                f"{timeout:g} s: {last}. Start it with `{START_LOCALSTACK}` (docs/localstack.md), "
                f"point {ENDPOINT_VARIABLE} at another one, or wait longer with {WAIT_VARIABLE}."
            )
        time.sleep(interval)


def read_info(endpoint: str, health: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``/_localstack/info`` (version, edition, license); the health answer's fields if that
    endpoint does not answer."""
    url = f"{endpoint}/_localstack/info"
    try:
        status, body = _get_json(url, timeout=5.0)
    except (OSError, ValueError):
        status, body = 0, None
    if status == 200 and isinstance(body, dict):
        return body
    fallback = health or {}
    return {"edition": fallback.get("edition"), "version": fallback.get("version")}
