"""A hostile producer against the deployed pipeline: no good event is lost to a bad one.

Good events and bad ones, mixed into the same aggregates and batches, are put on the
session workspace's stream, and the functions Terraform deployed read it through the event
source mappings Terraform created (batch sizes, bisection, retries, on-failure queues), in
the local runtime. Then every event is accounted for:

* every good event is in the read models, in the lake and in the archive;
* every bad one is quarantined, once per consumer that reads it, with the bytes that
  arrived and a reason naming the field; the archive keeps it too;
* no batch is dead-lettered and no record failed for good.

The bad events are those a hostile producer was seen to put: a decimal wider than the
lake's column, an item over DynamoDB's 400 KB, an event id of 1,100 characters, metric values
that are not numbers, an empty user id, dates in the year 9999, a version of 2^63 - 1,
bytes that are not an event at all.
"""

from __future__ import annotations

import json
import math
import os
import random
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from pipelines.consumers.archive import read_archive
from pipelines.contract.codec import encode_event
from pipelines.contract.events import new_event
from pipelines.stream.aggregation import Aggregator
from pipelines.stream.producer import Producer
from pipelines_local.simulator import SPAN, simulate
from tests.hostile import forge
from tests.stack import DeployedStack

pytestmark = [pytest.mark.integration, pytest.mark.needs("glue", "local_runtime")]

RUN_SECONDS = 240
NOW = datetime.now(UTC).replace(microsecond=0)


@dataclass(frozen=True)
class Bad:
    """One bad event: its bytes, which consumers must quarantine it, and the field named."""

    name: str
    data: bytes
    partition_key: str
    quarantined_by: frozenset[str]
    field: str


EVERY_READER = frozenset({"projector", "alerter", "lake-writer", "archiver"})


def _at(minutes: int = 30) -> datetime:
    return NOW - timedelta(minutes=minutes)


def _transaction(user: str, **changes: Any) -> dict[str, Any]:
    body = {
        "transaction_id": f"tx-{uuid.uuid4().hex[:8]}",
        "user_id": user,
        "amount": Decimal("10.0000"),
        "currency": "EUR",
        "merchant": "m",
        "category": "grocery",
        "status": "completed",
    }
    body.update(changes)
    return new_event("TransactionRecorded", body, producer="hostile", occurred_at=_at())


def _metric(value: float) -> dict[str, Any]:
    body = {"metric_name": "cpu_usage", "value": value, "source": "host-bad", "tags": {}}
    return new_event("MetricRecorded", body, producer="hostile", occurred_at=_at())


def _activity(user: str, details_bytes: int = 0) -> dict[str, Any]:
    details = {"blob": "x" * details_bytes} if details_bytes else {}
    body = {"user_id": user, "activity_type": "login", "details": details}
    return new_event("UserActivityRecorded", body, producer="hostile", occurred_at=_at())


def bad_events() -> list[Bad]:
    """The hostile producer's events, each with what must become of it."""
    out = []

    def add(name: str, event: dict[str, Any], by: frozenset[str], field: str) -> None:
        out.append(Bad(name, forge(event), event["metadata"]["aggregate_id"] or "k", by, field))

    add(
        "decimal wider than the column",
        _transaction("u-bad-1", amount=Decimal("123456789012345678901234.5")),
        EVERY_READER,
        "amount",
    )
    long_id = _activity("u-bad-2")
    long_id["metadata"]["event_id"] = "e" * 1100
    add("event id of 1,100 characters", long_id, EVERY_READER, "metadata.event_id")
    add("nan metric", _metric(math.nan), EVERY_READER, "value")
    add("infinite metric", _metric(math.inf), EVERY_READER, "value")
    empty = _transaction("")
    add("empty user id", empty, EVERY_READER, "metadata.aggregate_id")
    late = new_event(
        "ImageLabeled",
        {"bucket": "b", "key": "uploads/bad.jpg", "labels": []},
        producer="hostile",
        occurred_at=datetime(9999, 1, 1, tzinfo=UTC),
    )
    add("dated 9999", late, EVERY_READER, "metadata.occurred_at")
    huge_version = new_event(
        "UserProfileUpdated",
        {"user_id": "u-bad-3", "name": "N", "email": None, "phone": None, "preferences": None},
        producer="hostile",
        occurred_at=_at(),
        aggregate_version=2**63 - 1,
    )
    add("version 2^63-1", huge_version, EVERY_READER, "metadata.aggregate_version")
    # Keeps the contract, but no DynamoDB item can hold it: the projector's alone to refuse.
    big = _activity("u-bad-4", details_bytes=450 * 1024)
    out.append(Bad("item over 400 KB", encode_event(big), "u-bad-4", frozenset({"projector"}), ""))
    out.append(Bad("not an event", b"\xc3\x01" + b"\x00" * 8 + b"junk", "k-junk", EVERY_READER, ""))
    return out


@dataclass
class Outcome:
    good: list[dict[str, Any]]
    bad: list[Bad]
    quarantine: dict[str, bytes]  # key -> bytes, every object of the quarantine bucket
    lake_ids: Counter[str]
    archived: Counter[bytes]
    dead_letters: dict[str, int]
    failed: int
    drained: bool


def _put_mixed(deployed: DeployedStack, good: list[dict[str, Any]], bad: list[Bad]) -> None:
    """Good events through the producer; bad ones alone and inside aggregates of good ones.

    Every good event is put once: a good event put twice at two sequence numbers is a
    duplicate only the lake's cross-batch de-duplication removes.
    """
    kinesis = deployed.client("kinesis")
    stream = deployed.workspace.stream_name
    rng = random.Random(9)
    Producer(kinesis, stream).put_events(good[: len(good) // 2])
    rest = good[len(good) // 2 :]
    for i, item in enumerate(bad):
        if i % 2:  # alone, as a plain record
            kinesis.put_record(StreamName=stream, Data=item.data, PartitionKey=item.partition_key)
            continue
        aggregator = Aggregator()  # among good events of the other half, in one aggregate
        neighbours = [rest.pop(rng.randrange(len(rest))) for _ in range(3)]
        for event in neighbours[:2]:
            aggregator.add(event["metadata"]["aggregate_id"], encode_event(event))
        aggregator.add(item.partition_key, item.data)
        aggregator.add(neighbours[2]["metadata"]["aggregate_id"], encode_event(neighbours[2]))
        kinesis.put_record(
            StreamName=stream, Data=aggregator.seal(), PartitionKey=item.partition_key
        )
    Producer(kinesis, stream).put_events(rest)


def _objects(s3: Any, bucket: str) -> dict[str, bytes]:
    out = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for entry in page.get("Contents", []):
            out[entry["Key"]] = s3.get_object(Bucket=bucket, Key=entry["Key"])["Body"].read()
    return out


@pytest.fixture(scope="module")
def outcome(deployed: DeployedStack) -> Outcome:
    workspace = deployed.workspace
    good = simulate(240, seed=29, start=NOW - SPAN - timedelta(hours=1)).events
    bad = bad_events()
    with pytest.MonkeyPatch.context() as monkeypatch:
        for name, value in workspace.env().items():
            monkeypatch.setenv(name, value)
        _put_mixed(deployed, good, bad)
        runtime = workspace.runtime()
        result = runtime.run(until_drained=True, max_seconds=RUN_SECONDS)
        failed = int(runtime.output.metrics.total("RecordsFailed"))
    s3 = deployed.client("s3")
    lake_ids: Counter[str] = Counter()  # as a reader sees the tables, not their objects
    lake = workspace.lake_catalog()
    for event_type in lake.tables.event_types:
        table = lake.table(event_type, refresh=True)
        if table.current_snapshot() is not None:
            scan = table.scan(selected_fields=("event_id",)).to_arrow()
            lake_ids.update(scan.column("event_id").to_pylist())
    archived: Counter[bytes] = Counter()
    for key, data in _objects(s3, workspace.bucket("archive")).items():
        if key.endswith(".avro"):
            archived.update(entry.record.data for entry in read_archive(data))
    sqs = deployed.client("sqs")
    dead_letters = {}
    for url in sqs.list_queues(QueueNamePrefix=workspace.output("name_prefix")).get(
        "QueueUrls", []
    ):
        if "dead" in url or "dlq" in url:
            attributes = sqs.get_queue_attributes(
                QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
            )["Attributes"]
            dead_letters[url] = int(attributes["ApproximateNumberOfMessages"])
    return Outcome(
        good=good,
        bad=bad,
        quarantine=_objects(s3, workspace.bucket("quarantine")),
        lake_ids=lake_ids,
        archived=archived,
        dead_letters=dead_letters,
        failed=failed,
        drained=result.drained,
    )


def test_the_pipeline_drains_without_a_failed_record_or_a_dead_letter(outcome: Outcome) -> None:
    assert outcome.drained
    assert outcome.failed == 0
    assert outcome.dead_letters and set(outcome.dead_letters.values()) == {0}


def test_every_good_event_is_in_the_lake_once(outcome: Outcome) -> None:
    ids = [e["metadata"]["event_id"] for e in outcome.good]
    assert {i: outcome.lake_ids[i] for i in ids} == dict.fromkeys(ids, 1)


def test_every_record_is_in_the_archive_once_bad_ones_included(outcome: Outcome) -> None:
    good = {encode_event(e) for e in outcome.good}
    assert {b: outcome.archived[b] for b in good} == dict.fromkeys(good, 1)
    assert {b.name: outcome.archived[b.data] for b in outcome.bad} == {
        b.name: 1 for b in outcome.bad
    }


def test_every_good_event_is_projected(deployed: DeployedStack, outcome: Outcome) -> None:
    dynamodb = deployed.client("dynamodb")
    workspace = deployed.workspace
    missing = []
    for event in outcome.good:
        key = _projected_key(event)
        if key is None:
            continue
        table, item_key, check = key
        item = dynamodb.get_item(TableName=workspace.table(table), Key=item_key).get("Item")
        if item is None or not check(item):
            missing.append((event["metadata"]["event_type"], event["metadata"]["event_id"]))
    assert missing == []


def _projected_key(
    event: dict[str, Any],
) -> tuple[str, dict[str, Any], Callable[[dict[str, Any]], bool]] | None:
    meta = event["metadata"]
    kind = meta["event_type"]
    at = meta["occurred_at"].astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{meta['occurred_at'].microsecond // 1000:03d}Z"
    )
    if kind == "UserActivityRecorded":
        key = {"user_id": {"S": event["user_id"]}, "timestamp": {"S": f"{at}#{meta['event_id']}"}}
        return "user_activities", key, lambda item: True
    if kind == "MetricRecorded":
        metric_id = f"{event['source']}#{event['metric_name']}#{at}#{meta['event_id']}"
        return "system_metrics", {"metric_id": {"S": metric_id}}, lambda item: True
    if kind == "TransactionRecorded":
        return "transactions", {"transaction_id": {"S": event["transaction_id"]}}, lambda i: True
    if kind in ("UserRegistered", "UserProfileUpdated"):
        version = meta["aggregate_version"] or 1

        def newer(item: dict[str, Any]) -> bool:
            return int(item["aggregate_version"]["N"]) >= version

        return "users", {"user_id": {"S": event["user_id"]}}, newer
    if kind == "ImageLabeled":
        return "image_analysis", {"image_key": {"S": event["key"]}}, lambda item: True
    return None


def test_every_bad_event_is_quarantined_once_by_each_reader_with_its_bytes_and_field(
    outcome: Outcome,
) -> None:
    found: dict[str, set[str]] = {}
    for bad in outcome.bad:
        holders = {
            key.split("/", 1)[0]: key
            for key, data in outcome.quarantine.items()
            if key.endswith(".avro") and data == bad.data
        }
        found[bad.name] = set(holders)
        for consumer, key in holders.items():
            report = json.loads(outcome.quarantine[key[: -len(".avro")] + ".json"])
            assert report["consumer"] == consumer
            assert bad.field in report["reason"], (bad.name, report["reason"])
    assert found == {b.name: set(b.quarantined_by) for b in outcome.bad}


def test_no_good_event_is_quarantined(outcome: Outcome) -> None:
    good = {encode_event(e) for e in outcome.good}
    assert [k for k, data in outcome.quarantine.items() if data in good] == []


def test_pipeline_quarantine_list_shows_every_quarantined_record_with_its_reason(
    deployed: DeployedStack, outcome: Outcome
) -> None:
    env = {**os.environ, "PIPELINE_STATE_DIR": str(deployed.workspace.state_dir)}
    base = [sys.executable, "-m", "pipelines_local.cli", "quarantine", "list"]
    workspace = ["--workspace", deployed.workspace.name, "--json"]

    listed = subprocess.run(
        [*base, *workspace], capture_output=True, text=True, env=env, check=False
    )
    projector = subprocess.run(
        [*base, *workspace, "--consumer", "projector"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )

    assert listed.returncode == 0, listed.stderr
    records = {r["key"]: r for r in json.loads(listed.stdout)}
    for key in (k for k in outcome.quarantine if k.endswith(".avro")):
        report = json.loads(outcome.quarantine[key[: -len(".avro")] + ".json"])
        assert records[key]["reason"] == report["reason"]
        assert records[key]["consumer"] == key.split("/", 1)[0]
    assert projector.returncode == 0, projector.stderr
    only = json.loads(projector.stdout)
    assert only and {r["consumer"] for r in only} == {"projector"}


def test_a_redriven_record_that_is_still_bad_is_quarantined_again_and_nothing_is_lost(
    deployed: DeployedStack, outcome: Outcome
) -> None:
    workspace = deployed.workspace
    env = {**os.environ, "PIPELINE_STATE_DIR": str(workspace.state_dir)}
    base = [sys.executable, "-m", "pipelines_local.cli", "quarantine", "redrive"]
    select = ["--workspace", workspace.name, "--consumer", "projector", "--json"]
    projector_bad = {b.data for b in outcome.bad if "projector" in b.quarantined_by}

    preview = subprocess.run([*base, *select], capture_output=True, text=True, env=env)
    assert preview.returncode == 0, preview.stderr
    planned = json.loads(preview.stdout)
    assert planned["execute"] is False and planned["put"] == 0
    assert planned["records"] >= len(projector_bad)

    done = subprocess.run([*base, *select, "--execute"], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["put"] == planned["records"]
    with pytest.MonkeyPatch.context() as monkeypatch:
        for name, value in workspace.env().items():
            monkeypatch.setenv(name, value)
        assert workspace.runtime().run(until_drained=True, max_seconds=RUN_SECONDS).drained

    # Nothing was fixed, so each record is refused again, under its new coordinates.
    again = _objects(deployed.client("s3"), workspace.bucket("quarantine"))
    for data in projector_bad:
        before = [
            k for k, v in outcome.quarantine.items() if v == data and k.startswith("projector/")
        ]
        after = [k for k, v in again.items() if v == data and k.startswith("projector/")]
        assert len(after) == len(before) + 1
