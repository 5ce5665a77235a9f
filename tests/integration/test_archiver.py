"""The archiver's Lambda handler against the embedded emulator, as Terraform configured it.

* invoked directly, in the deployed archiver's environment (on copies of its buckets): poison
  is archived as it arrived and quarantined, and a re-delivered batch rewrites the same
  objects;
* under the local runtime, on a fresh two-shard stream with the archiver's mapping settings
  as Terraform declares them (bisection off): every record, events and poison, is archived
  exactly once, also when every batch is delivered twice or its first delivery dies after
  the archive was written.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from functions.archiver import handler
from pipelines.consumers.archive import ArchivedEvent, read_archive
from pipelines.contract.codec import MAGIC
from pipelines.errors import MisconfigurationError
from pipelines.stream.producer import Producer
from pipelines_local.simulator import simulate
from tests.integration.runtime_stack import RuntimeStack
from tests.kinesis_events import aggregated_record, kinesis_event, kinesis_record, sequence_number
from tests.stack import DeployedStack
from tests.unit.test_lake_writer import mixed_batch, sample_events

pytestmark = pytest.mark.integration

ARCHIVER = "functions.archiver.handler.lambda_handler"
UNKNOWN_FINGERPRINT = MAGIC + b"\x00" * 8 + b"body"


@pytest.fixture
def buckets(
    deployed: DeployedStack, deployed_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """The archiver's environment as Terraform set it, on copies of its buckets."""
    isolated = deployed.isolated("archiver")
    for name, value in isolated.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    handler.archiver_for.cache_clear()
    return isolated.buckets


@pytest.fixture
def s3(deployed: DeployedStack) -> Any:
    return deployed.client("s3")


@pytest.fixture
def invoke(deployed: DeployedStack) -> Callable[[dict[str, Any]], dict[str, Any]]:
    context = deployed.context("archiver")

    def call(event: dict[str, Any]) -> dict[str, Any]:
        response: dict[str, Any] = handler.lambda_handler(event, context)
        return json.loads(json.dumps(response))  # as Lambda serialises it

    return call


def keys(s3: Any, bucket: str) -> dict[str, str]:
    """Key -> ETag of every object in ``bucket``."""
    paginator = s3.get_paginator("list_objects_v2")
    return {
        o["Key"]: o["ETag"]
        for page in paginator.paginate(Bucket=bucket)
        for o in page.get("Contents", [])
    }


def archived(s3: Any, bucket: str) -> list[ArchivedEvent]:
    return [
        entry
        for key in sorted(keys(s3, bucket))
        for entry in read_archive(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    ]


def test_the_archive_keeps_poison_as_it_arrived_and_redelivery_rewrites_the_same_objects(
    buckets: dict[str, str], s3: Any, invoke: Any
) -> None:
    events = sample_events(60)
    not_base64 = kinesis_record(b"", "pk-not-base64", 91)
    not_base64["kinesis"]["data"] = "this is not base64!"
    inside = aggregated_record([events[0], ("pk-inside", UNKNOWN_FINGERPRINT), events[1]], 92)
    records = [
        *mixed_batch(events[2:]),
        kinesis_record(UNKNOWN_FINGERPRINT, "pk-unknown", 90),
        not_base64,
        inside,
    ]

    assert invoke(kinesis_event(records)) == {"batchItemFailures": []}
    first = keys(s3, buckets["archive"])
    assert invoke(kinesis_event(records)) == {"batchItemFailures": []}

    assert keys(s3, buckets["archive"]) == first  # same keys, same bytes
    assert all(key.startswith("events/dt=") for key in first)
    entries = archived(s3, buckets["archive"])
    assert len(entries) == 60 + 3
    poison = {
        (e.record.sequence_number, e.record.sub_sequence_number): (e.record.data, e.poison_code)
        for e in entries
        if e.is_poison
    }
    assert poison == {
        (sequence_number(90), 0): (UNKNOWN_FINGERPRINT, "unknown_schema"),
        (sequence_number(91), 0): (b"this is not base64!", "corrupt_record"),
        (sequence_number(92), 1): (UNKNOWN_FINGERPRINT, "unknown_schema"),
    }
    quarantined = sorted(keys(s3, buckets["quarantine"]))
    assert len(quarantined) == 6 and all(k.startswith("archiver/") for k in quarantined)


def test_a_missing_archive_bucket_fails_the_invocation_loudly(
    buckets: dict[str, str], s3: Any, invoke: Any
) -> None:
    s3.delete_bucket(Bucket=buckets["archive"])

    with pytest.raises(MisconfigurationError, match="NoSuchBucket"):
        invoke(kinesis_event(mixed_batch(sample_events(10))))


# --- under the local runtime, as Lambda runs it --------------------------------------------

WORKLOAD_EVENTS = 1000
POISON_RECORDS = 7
BATCH_SIZE = 20
COUNTS: Counter[str] = Counter()
_SEEN: set[str] = set()


def deliver_twice(event: dict[str, Any], context: Any) -> Any:
    """Every batch twice, back to back, as a duplicate invocation brings it."""
    COUNTS["invocations"] += 2
    handler.lambda_handler(event, context)
    return handler.lambda_handler(event, context)


class DiedAfterWriting(RuntimeError):
    """The function died after the archive was written, before it answered."""


def die_after_first_delivery(event: dict[str, Any], context: Any) -> Any:
    """A batch's first delivery archives it, then the function dies: Lambda delivers it again."""
    response = handler.lambda_handler(event, context)
    first = event["Records"][0]["eventID"]
    if first not in _SEEN:
        _SEEN.add(first)
        COUNTS["deaths"] += 1
        raise DiedAfterWriting(f"died after archiving {len(event['Records'])} records")
    return response


class ArchiverStack(RuntimeStack):
    """A fresh stream and the archiver on it, with the deployed archiver's environment."""

    handler_module = __name__

    def __init__(self, deployed: DeployedStack, tmp_path: Path) -> None:
        super().__init__(deployed.client, deployed.endpoint_url, tmp_path)
        self.s3 = deployed.client("s3")
        self.isolated = deployed.isolated("archiver", self.prefix.rstrip("-"))
        self.archive = self.isolated.buckets["archive"]


@pytest.fixture(scope="module")
def workload() -> list[dict[str, Any]]:
    return simulate(WORKLOAD_EVENTS, seed=11).events


@pytest.mark.needs("local_runtime")
@pytest.mark.parametrize("wrapper", ["", "deliver_twice", "die_after_first_delivery"])
def test_every_record_is_archived_exactly_once_however_delivery_misbehaves(
    deployed: DeployedStack,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    workload: list[dict[str, Any]],
    wrapper: str,
) -> None:
    for name, value in deployed.workspace.env().items():
        monkeypatch.setenv(name, value)
    COUNTS.clear()
    _SEEN.clear()
    handler.archiver_for.cache_clear()
    stack = ArchiverStack(deployed, tmp_path)
    stream_arn = stack.stream(shards=2)
    env = {**stack.isolated.env, "POWERTOOLS_TRACE_DISABLED": "true"}
    if wrapper:
        stack.function(wrapper, env=env)
    else:
        stack.handler_module = None
        stack.function(ARCHIVER, env=env)
    deployed_mapping = deployed.client("lambda").list_event_source_mappings(
        FunctionName=deployed.function_config("archiver").arn
    )["EventSourceMappings"][0]
    assert not deployed_mapping.get("BisectBatchOnFunctionError", False)
    stack.mapping(
        stream_arn,
        BatchSize=BATCH_SIZE,
        FunctionResponseTypes=["ReportBatchItemFailures"],
        BisectBatchOnFunctionError=False,
        MaximumRetryAttempts=deployed_mapping["MaximumRetryAttempts"],
    )
    Producer(
        stack.kinesis, stack.stream_name, max_aggregate_bytes=1500, rng=random.Random(3)
    ).put_events(workload)
    poison = [f"poison-{n}".encode() for n in range(POISON_RECORDS)]
    for n, data in enumerate(poison):
        stack.kinesis.put_record(StreamName=stack.stream_name, Data=data, PartitionKey=f"p{n}")

    result = stack.runtime().run(until_drained=True, max_seconds=60)

    assert result.drained, result.stats
    assert result.stats.batches > 4  # several batches per shard
    assert result.stats.records_dead_lettered == result.stats.records_discarded == 0
    entries = archived(stack.s3, stack.archive)
    places = Counter(
        (e.record.shard_id, e.record.sequence_number, e.record.sub_sequence_number) for e in entries
    )
    assert set(places.values()) == {1}  # each record once, at its own coordinates
    assert Counter(e.event_id for e in entries if not e.is_poison) == Counter(
        {e["metadata"]["event_id"]: 1 for e in workload}
    )
    assert sorted(e.record.data for e in entries if e.is_poison) == sorted(poison)
    if wrapper == "deliver_twice":
        assert COUNTS["invocations"] == 2 * result.stats.batches
    if wrapper == "die_after_first_delivery":
        assert COUNTS["deaths"] > 0
        assert result.stats.function_errors == COUNTS["deaths"]
