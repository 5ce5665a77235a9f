"""On LocalStack, the deployed pipeline's read models equal the embedded runtime's.

Only with ``PIPELINE_TARGET=localstack`` (``make test-localstack``, docs/localstack.md):

1. ``pipeline up --endpoint <LocalStack>`` deploys the real root module and package to a
   workspace of this test's own (so no other test's events reach its tables), and
   ``pipeline down`` destroys it afterwards;
2. once the projector is Active and its Kinesis mapping Enabled, a seeded simulation goes
   onto the workspace's stream through the producer, and LocalStack's own event source
   mappings invoke the deployed functions (nothing of the local runtime runs);
3. the same events go through the projector's own code in-process (the batch kernel and the
   projector the handler builds, with the deployed function's settings) against copies of
   the projection tables on the embedded emulator: the embedded runtime's result;
4. every item of the five read models must be the same on both. The projections are
   independent of arrival order and batching (docs/adr/0006), so the two deliveries must
   converge on the same items. Numbers are compared in canonical form and sets in any order:
   DynamoDB (and LocalStack) read ``12.50`` back as ``12.5``, moto as written.
"""

from __future__ import annotations

import base64
import json
import logging
import shutil
import time
import uuid
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields
from decimal import Decimal
from typing import Any

import boto3
import pytest

from pipelines.consumers.config import ProjectorSettings, TableNames
from pipelines.consumers.projector.projector import build_projector
from pipelines.stream.producer import Producer
from pipelines_local.emulator import start_emulator
from pipelines_local.infra.cli_config import provider_mirror
from pipelines_local.simulator import Workload, default_start, simulate
from pipelines_local.workspace import Workspace
from tests.kinesis_events import plain_records
from tests.session_stack import SessionStack
from tests.targets import Target

pytestmark = [
    pytest.mark.only_on("localstack"),
    pytest.mark.needs("stack", "lambda_exec"),
]

EVENTS = 2000
SEED = 23
BATCH = 100  # the deployed projector's mapping batch size (terraform/functions.tf)
PROJECTIONS = tuple(f.name for f in fields(TableNames))
READY_SECONDS = 300  # the projector Active and its mapping Enabled
# The first invocations pull LocalStack's Lambda runtime image and start its containers.
PROJECTED_SECONDS = 900
POLL_SECONDS = 5
_INDEX_FIELDS = ("IndexName", "KeySchema", "Projection")
_log = logging.getLogger(__name__)

ReadModels = dict[str, list[str]]  # projection -> its items, canonical JSON, sorted


@dataclass
class Projected:
    localstack: ReadModels
    embedded: ReadModels
    quarantined: dict[str, int]  # side -> the projector's quarantined records
    seconds: float


# --- the workspace on LocalStack --------------------------------------------------------------


@pytest.fixture(scope="module")
def workspace(pipeline_target: Target) -> Iterator[Workspace]:
    """A workspace of this module's own, applied to LocalStack by ``pipeline up --endpoint``."""
    if shutil.which("terraform") is None or not provider_mirror().is_dir():
        pytest.skip("terraform or its provider mirror is not installed")
    stack = SessionStack(
        f"parity-{uuid.uuid4().hex[:6]}", endpoint_url=pipeline_target.endpoint_url
    )
    stack.start()
    try:
        stack.up()
        yield stack.workspace_record()
    finally:
        down = stack.stop()
        if down is not None and down.returncode != 0:
            warnings.warn(
                f"pipeline down of {stack.workspace} failed ({down.returncode}); its resources "
                f"are left on {pipeline_target.endpoint_url}:\n{down.stderr[-2000:]}",
                stacklevel=1,
            )


@pytest.fixture(scope="module")
def workload() -> Workload:
    # Event time ends at today's midnight, so the facts' time to live lies in the future.
    return simulate(EVENTS, SEED, start=default_start())


@pytest.fixture(scope="module")
def projected(workspace: Workspace, workload: Workload) -> Projected:
    lambda_ = workspace.client("lambda")
    projector = lambda_.get_function_configuration(FunctionName=workspace.function("projector"))
    environment = dict(projector["Environment"]["Variables"])
    live_tables = {kind: environment[f"{kind.upper()}_TABLE"] for kind in PROJECTIONS}
    dynamodb = workspace.client("dynamodb")
    expected, expected_quarantined = embedded_read_models(dynamodb, environment, workload)

    wait_until_mapped(workspace, projector["FunctionArn"])
    started = time.monotonic()
    Producer(workspace.client("kinesis"), workspace.stream_name).put_events(workload.events)
    actual = wait_for_projections(dynamodb, live_tables, expected, workspace, projector)
    quarantine = environment["QUARANTINE_BUCKET"]
    return Projected(
        localstack=actual,
        embedded=expected,
        quarantined={
            "localstack": _count_objects(workspace.client("s3"), quarantine, "projector/"),
            "embedded": expected_quarantined,
        },
        seconds=time.monotonic() - started,
    )


def wait_until_mapped(workspace: Workspace, function_arn: str) -> None:
    """The projector Active and its Kinesis mapping Enabled (LocalStack creates both
    asynchronously); the mapping starts at TRIM_HORIZON, so this is for a clear failure."""
    lambda_ = workspace.client("lambda")
    lambda_.get_waiter("function_active_v2").wait(
        FunctionName=function_arn,
        WaiterConfig={"Delay": 2, "MaxAttempts": READY_SECONDS // 2},
    )
    deadline = time.monotonic() + READY_SECONDS
    states: list[str] = []
    while time.monotonic() < deadline:
        mappings = lambda_.list_event_source_mappings(FunctionName=function_arn)
        states = [
            m.get("State", "?")
            for m in mappings["EventSourceMappings"]
            if m["EventSourceArn"] == workspace.stream_arn
        ]
        if states and all(s == "Enabled" for s in states):
            return
        time.sleep(POLL_SECONDS)
    pytest.fail(f"the projector's stream mapping is not Enabled after {READY_SECONDS}s: {states}")


def wait_for_projections(
    dynamodb: Any,
    tables: Mapping[str, str],
    expected: ReadModels,
    workspace: Workspace,
    projector: Mapping[str, Any],
) -> ReadModels:
    """The read models on LocalStack once they equal ``expected``, or once they hold as many
    items as expected and stopped changing (then the comparison shows what differs)."""
    deadline = time.monotonic() + PROJECTED_SECONDS
    previous: ReadModels | None = None
    while True:
        actual = read_models(dynamodb, tables)
        if actual == expected:
            return actual
        complete = all(len(actual[k]) >= len(expected[k]) for k in PROJECTIONS)
        if complete and actual == previous:
            return actual
        if time.monotonic() > deadline:
            counts = {k: f"{len(actual[k])}/{len(expected[k])}" for k in PROJECTIONS}
            pytest.fail(
                f"LocalStack projected {counts} items (of the embedded runtime's) after "
                f"{PROJECTED_SECONDS}s.\nThe projector's last log lines:\n"
                + "\n".join(_last_log_lines(workspace, projector))
            )
        previous = actual
        time.sleep(POLL_SECONDS)


def _last_log_lines(workspace: Workspace, projector: Mapping[str, Any], n: int = 20) -> list[str]:
    name = projector["FunctionName"]
    group = (projector.get("LoggingConfig") or {}).get("LogGroup") or f"/aws/lambda/{name}"
    try:
        events = workspace.client("logs").filter_log_events(logGroupName=group, limit=200)
    except Exception as exc:  # diagnostics only: say why there are none
        return [f"(no log lines from {group}: {exc})"]
    return [e["message"].rstrip() for e in events.get("events", [])[-n:]] or [f"({group} empty)"]


def _count_objects(s3: Any, bucket: str, prefix: str) -> int:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sum(page.get("KeyCount", 0) for page in pages)


# --- the embedded runtime's result ------------------------------------------------------------


def embedded_read_models(
    live_dynamodb: Any, environment: Mapping[str, str], workload: Workload
) -> tuple[ReadModels, int]:
    """The workload through the projector in-process, on the embedded emulator: copies of the
    live tables (as LocalStack holds them), the deployed function's settings."""
    with start_emulator() as emulator:
        env = emulator.env()

        session: Any = boto3.session.Session(
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            region_name=env["AWS_REGION"],
        )

        def client(service: str) -> Any:
            return session.client(service, endpoint_url=emulator.endpoint_url)

        dynamodb, s3 = client("dynamodb"), client("s3")
        tables = {}
        for kind in PROJECTIONS:
            name = environment[f"{kind.upper()}_TABLE"]
            table = live_dynamodb.describe_table(TableName=name)["Table"]
            request: dict[str, Any] = {
                "TableName": name,
                "KeySchema": table["KeySchema"],
                "AttributeDefinitions": table["AttributeDefinitions"],
                "BillingMode": "PAY_PER_REQUEST",
            }
            indexes = table.get("GlobalSecondaryIndexes") or []
            if indexes:
                request["GlobalSecondaryIndexes"] = [
                    {k: index[k] for k in _INDEX_FIELDS} for index in indexes
                ]
            dynamodb.create_table(**request)
            tables[kind] = name
        quarantine = environment["QUARANTINE_BUCKET"]
        s3.create_bucket(Bucket=quarantine)
        settings = ProjectorSettings.from_env({**environment, **env})
        kernel = build_projector(settings, dynamodb, s3, logger=_log)
        records = plain_records(workload.events)
        for start in range(0, len(records), BATCH):
            outcome = kernel.process_batch(records[start : start + BATCH])
            failed = [e for e in outcome.errors if e is not None]
            assert not failed, f"the projector failed in-process: {failed[0]!r}"
        return read_models(dynamodb, tables), _count_objects(s3, quarantine, "projector/")


# --- comparing ---------------------------------------------------------------------------------


def _number(text: str) -> str:
    return format(Decimal(text).normalize(), "f")


def canonical(value: Mapping[str, Any]) -> dict[str, Any]:
    """A DynamoDB attribute value with numbers normalised and sets sorted."""
    ((kind, inner),) = value.items()
    if kind == "N":
        return {"N": _number(inner)}
    if kind == "NS":
        return {"NS": sorted(_number(v) for v in inner)}
    if kind in ("SS", "BS"):
        return {kind: sorted(inner)}
    if kind == "M":
        return {"M": {k: canonical(v) for k, v in inner.items()}}
    if kind == "L":
        return {"L": [canonical(v) for v in inner]}
    return {kind: inner}


def _bytes(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode()
    raise TypeError(f"not JSON: {type(value).__name__}")


def read_models(dynamodb: Any, tables: Mapping[str, str]) -> ReadModels:
    out: ReadModels = {}
    for kind, table in tables.items():
        items = [
            {name: canonical(v) for name, v in item.items()}
            for page in dynamodb.get_paginator("scan").paginate(TableName=table)
            for item in page.get("Items", [])
        ]
        out[kind] = sorted(
            json.dumps(item, sort_keys=True, separators=(",", ":"), default=_bytes)
            for item in items
        )
    return out


def _differences(actual: list[str], expected: list[str], sample: int = 3) -> str:
    only_actual = sorted(set(actual) - set(expected))
    only_expected = sorted(set(expected) - set(actual))
    lines = [f"{len(only_actual)} only on LocalStack, {len(only_expected)} only embedded"]
    lines += [f"  LocalStack: {item[:400]}" for item in only_actual[:sample]]
    lines += [f"  embedded:   {item[:400]}" for item in only_expected[:sample]]
    return "\n".join(lines)


# --- the tests -----------------------------------------------------------------------------


@pytest.mark.parametrize("projection", PROJECTIONS)
def test_each_read_model_on_localstack_equals_the_embedded_runtimes(
    projected: Projected, projection: str
) -> None:
    actual, expected = projected.localstack[projection], projected.embedded[projection]
    assert expected, f"the workload projects nothing into {projection}"
    assert actual == expected, _differences(actual, expected)


def test_nothing_is_quarantined_on_either_side(projected: Projected) -> None:
    assert projected.quarantined == {"localstack": 0, "embedded": 0}
