"""Exactly-once effects on at-least-once delivery (DESIGN.md, "Delivery semantics").

One workload is produced onto a fresh two-shard stream, projected by the projector's handler
under the local runtime, and the read models are read back - four times:

* ``clean`` - the handler as deployed;
* every batch delivered twice (a duplicate invocation);
* the handler crashing part-way through each batch's first delivery, after some writes;
* DynamoDB throttling writes and handing back unprocessed items.

Every run gets its own copies of the deployed projector's tables, and its own stream,
function and mapping (a fresh name prefix), so the runs cannot see each other's writes. The
tables' contents must come out identical (a digest of every item, as DynamoDB returns it)
and complete.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import pytest

from pipelines.consumers.config import TableNames
from pipelines.stream.producer import Producer
from pipelines_local.runtime import MappingStats
from pipelines_local.simulator import simulate
from tests.integration import exactly_once_handlers as wrappers
from tests.integration.runtime_stack import RuntimeStack
from tests.stack import FAST_WRITE_RETRIES, DeployedStack

pytestmark = [pytest.mark.integration, pytest.mark.needs("local_runtime")]

WORKLOAD_EVENTS = 1000
WORKLOAD_SEED = 7
# Small aggregates, so a batch holds several KPL records and a record several events.
MAX_AGGREGATE_BYTES = 1500
BATCH_SIZE = 10
MAX_RETRIES = 10
RUN_SECONDS = 40

PROJECTOR = "functions.projector.handler.lambda_handler"
WRAPPERS = wrappers.__name__
HANDLERS = {
    "clean": PROJECTOR,
    "delivered_twice": f"{WRAPPERS}.deliver_twice",
    "crash_midway": f"{WRAPPERS}.crash_midway",
    "throttled": f"{WRAPPERS}.throttled",
}
STATE_EVENT_TYPES = ("UserRegistered", "UserProfileUpdated", "ImageLabeled", "TransactionRecorded")
KINDS = tuple(f.name for f in fields(TableNames))
FAST_RETRIES = {
    "WRITE_MAX_ATTEMPTS": "3",
    "WRITE_BACKOFF_BASE_MS": "1",
    "WRITE_BACKOFF_MAX_MS": "2",
}


@dataclass
class Run:
    """What one run left behind."""

    items: dict[str, list[dict[str, Any]]]  # by table kind, in a stable order
    stats: MappingStats
    drained: bool
    seconds: float
    metrics: dict[str, float]  # EMF metric totals the handler printed
    wrapper_counts: Counter[str]
    held_back_puts: int
    quarantined: int

    @property
    def counts(self) -> dict[str, int]:
        return {kind: len(items) for kind, items in self.items.items()}

    @property
    def digests(self) -> dict[str, str]:
        return {kind: digest(items) for kind, items in self.items.items()}


def digest(items: list[dict[str, Any]]) -> str:
    """A hash of a table's items (DynamoDB JSON, every attribute), independent of scan order."""
    lines = sorted(json.dumps(item, sort_keys=True, separators=(",", ":")) for item in items)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


class ProjectorStack(RuntimeStack):
    """A stream, a function and its mapping, all fresh, on copies of the projector's stores.

    The function's environment is the deployed projector's, as Terraform set it, naming
    copies of its tables (the definitions Terraform gave them) and of its bucket.
    """

    handler_module = None  # handlers are named in full
    function_timeout = 300
    function_memory = 512

    def __init__(self, deployed: DeployedStack, tmp_path: Path) -> None:
        super().__init__(deployed.client, deployed.endpoint_url, tmp_path)
        self.isolated = deployed.isolated("projector", self.prefix.rstrip("-"))

    def environment(self) -> dict[str, str]:
        return {**self.isolated.env, **FAST_WRITE_RETRIES, "POWERTOOLS_TRACE_DISABLED": "true"}

    def scan(self) -> dict[str, list[dict[str, Any]]]:
        dynamodb = self.client("dynamodb")
        out: dict[str, list[dict[str, Any]]] = {}
        for kind in KINDS:
            paginator = dynamodb.get_paginator("scan")
            items = [
                item
                for page in paginator.paginate(TableName=self.isolated.tables[kind])
                for item in page["Items"]
            ]
            out[kind] = sorted(items, key=lambda item: json.dumps(item, sort_keys=True))
        return out

    def quarantined(self) -> int:
        bucket = self.isolated.buckets["quarantine"]
        count: int = self.client("s3").list_objects_v2(Bucket=bucket)["KeyCount"]
        return count


@pytest.fixture(scope="module")
def workload() -> list[dict[str, Any]]:
    return simulate(WORKLOAD_EVENTS, seed=WORKLOAD_SEED).events


@pytest.fixture(scope="module")
def run_scenario(
    deployed: DeployedStack,
    tmp_path_factory: pytest.TempPathFactory,
    workload: list[dict[str, Any]],
) -> Iterator[Callable[[str], Run]]:
    """``run_scenario(name)``: the workload through ``HANDLERS[name]``, once per module."""
    runs: dict[str, Run] = {}

    def run(name: str) -> Run:
        if name not in runs:
            stack = ProjectorStack(deployed, tmp_path_factory.mktemp(name))
            runs[name] = _run(stack, name, workload)
        return runs[name]

    with pytest.MonkeyPatch.context() as monkeypatch:
        for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN"):
            monkeypatch.delenv(name, raising=False)
        for name, value in deployed.workspace.env().items():
            monkeypatch.setenv(name, value)
        yield run
    wrappers.reset()


def _run(stack: ProjectorStack, scenario: str, workload: list[dict[str, Any]]) -> Run:
    wrappers.reset()  # fresh faults, and projectors built for this run's settings
    stream_arn = stack.stream(shards=2)
    stack.function(HANDLERS[scenario], env=stack.environment())
    stack.mapping(
        stream_arn,
        BatchSize=BATCH_SIZE,
        FunctionResponseTypes=["ReportBatchItemFailures"],
        BisectBatchOnFunctionError=True,
        MaximumRetryAttempts=MAX_RETRIES,
    )
    producer = Producer(
        stack.kinesis,
        stack.stream_name,
        max_aggregate_bytes=MAX_AGGREGATE_BYTES,
        rng=random.Random(WORKLOAD_SEED),
    )
    producer.put_events(workload)
    runtime = stack.runtime()
    result = runtime.run(until_drained=True, max_seconds=RUN_SECONDS)
    metrics = runtime.output.metrics
    return Run(
        items=stack.scan(),
        stats=result.stats,
        drained=result.drained,
        seconds=result.seconds,
        metrics={
            name: metrics.total(name)
            for name in (
                "EventsProjected",
                "EventsSkippedDuplicate",
                "EventsSkippedStale",
                "RecordsFailed",
            )
        },
        wrapper_counts=Counter(wrappers.COUNTS),
        held_back_puts=wrappers.held_back_puts(),
        quarantined=stack.quarantined(),
    )


def _expected_counts(workload: list[dict[str, Any]]) -> dict[str, int]:
    by_type = Counter(e["metadata"]["event_type"] for e in workload)
    images = {e["key"] for e in workload if e["metadata"]["event_type"] == "ImageLabeled"}
    return {
        "users": by_type["UserRegistered"],
        "user_activities": by_type["UserActivityRecorded"],
        "system_metrics": by_type["MetricRecorded"],
        "transactions": by_type["TransactionRecorded"],
        "image_analysis": len(images),
    }


def _assert_settled(run: Run) -> None:
    """The run drained, gave up on nothing and quarantined nothing."""
    assert run.drained, f"not drained after {run.seconds:.1f}s: {run.stats}"
    assert run.stats.records_discarded == 0
    assert run.stats.records_dead_lettered == 0
    assert run.stats.records_expired == 0
    assert run.quarantined == 0


def test_a_clean_run_projects_every_event_of_the_workload_once(
    run_scenario: Callable[[str], Run], workload: list[dict[str, Any]]
) -> None:
    clean = run_scenario("clean")

    _assert_settled(clean)
    assert clean.stats.function_errors == clean.stats.partial_failures == clean.stats.retries == 0
    assert clean.counts == _expected_counts(workload)
    assert clean.metrics["EventsProjected"] == len(workload)

    updates = Counter(
        e["user_id"] for e in workload if e["metadata"]["event_type"] == "UserProfileUpdated"
    )
    versions = {u["user_id"]["S"]: int(u["aggregate_version"]["N"]) for u in clean.items["users"]}
    assert versions == {user: 1 + updates[user] for user in versions}

    latest_label: dict[str, str] = {}
    for e in workload:
        if e["metadata"]["event_type"] == "ImageLabeled":
            at = e["metadata"]["occurred_at"].isoformat(timespec="milliseconds")
            version = f"{at.replace('+00:00', 'Z')}#{e['metadata']['event_id']}"
            latest_label[e["key"]] = max(latest_label.get(e["key"], ""), version)
    images = {i["image_key"]["S"]: i["label_version"]["S"] for i in clean.items["image_analysis"]}
    assert images == latest_label


def test_every_batch_delivered_twice_leaves_the_tables_of_the_clean_run(
    run_scenario: Callable[[str], Run], workload: list[dict[str, Any]]
) -> None:
    clean, twice = run_scenario("clean"), run_scenario("delivered_twice")

    _assert_settled(twice)
    assert twice.stats.batches > 0
    assert twice.wrapper_counts["projector_invocations"] == 2 * twice.stats.batches
    # The second delivery of each batch applied no state update again: each one was skipped,
    # as a duplicate (or as stale, when a later version of its user landed in the same batch).
    state_events = sum(1 for e in workload if e["metadata"]["event_type"] in STATE_EVENT_TYPES)
    skipped = twice.metrics["EventsSkippedDuplicate"] + twice.metrics["EventsSkippedStale"]
    assert twice.metrics["EventsSkippedDuplicate"] > 0
    assert skipped == state_events
    assert twice.counts == clean.counts
    assert twice.digests == clean.digests


def test_a_handler_crashing_part_way_through_batches_leaves_the_tables_of_the_clean_run(
    run_scenario: Callable[[str], Run],
) -> None:
    clean, crashed = run_scenario("clean"), run_scenario("crash_midway")

    _assert_settled(crashed)
    assert crashed.wrapper_counts["crashes"] > 0
    assert crashed.stats.function_errors == crashed.wrapper_counts["crashes"]
    assert crashed.stats.bisections > 0
    assert crashed.stats.retries > 0
    assert crashed.counts == clean.counts
    assert crashed.digests == clean.digests


def test_dynamodb_throttling_and_unprocessed_items_leave_the_tables_of_the_clean_run(
    run_scenario: Callable[[str], Run],
) -> None:
    clean, throttled = run_scenario("clean"), run_scenario("throttled")

    _assert_settled(throttled)
    assert throttled.wrapper_counts["throttled_calls"] > 0
    assert throttled.held_back_puts > 0
    assert throttled.metrics["RecordsFailed"] > 0
    assert throttled.stats.partial_failures > 0
    assert throttled.stats.retries > 0
    assert throttled.counts == clean.counts
    assert throttled.digests == clean.digests
