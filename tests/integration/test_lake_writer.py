"""The lake writer's Lambda handler against the embedded emulator (Iceberg tables in Glue).

One test also runs the archiver's handler on the same batch, in the archiver's own
environment: a record the lake cannot hold is the lake's poison and no other sink's.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pytest

from functions.archiver import handler as archiver_handler
from functions.lake_writer import handler
from pipelines.consumers.archive import read_archive
from pipelines.consumers.lake import LakeCatalog, LakeTables, glue_catalog, watermark_of
from tests.kinesis_events import kinesis_event, kinesis_record, plain_records, sequence_number
from tests.stack import DeployedStack
from tests.unit.test_lake_writer import (
    mixed_batch,
    sample_events,
    too_wide_transaction,
    unchecked_bytes,
)

pytestmark = [pytest.mark.integration, pytest.mark.needs("glue")]


@pytest.fixture
def isolated(
    deployed: DeployedStack, deployed_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> Any:
    """The lake writer's environment as Terraform set it, on copies of its buckets and of
    the Glue database (no tables: the writer creates them)."""
    isolated = deployed.isolated("lake-writer")
    for name, value in isolated.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    handler.lake_writer_for.cache_clear()
    return isolated


@pytest.fixture
def buckets(isolated: Any) -> dict[str, str]:
    return dict(isolated.buckets)


@pytest.fixture
def lake(isolated: Any, deployed: DeployedStack) -> LakeCatalog:
    """The isolated lake's tables, as a reader sees them."""
    env = deployed.workspace.env()
    catalog = glue_catalog(
        env["AWS_REGION"],
        deployed.workspace.endpoint_url,
        access_key=env["AWS_ACCESS_KEY_ID"],
        secret_key=env["AWS_SECRET_ACCESS_KEY"],
    )
    return LakeCatalog(catalog, isolated.database, isolated.buckets["lake"], LakeTables())


@pytest.fixture
def s3(deployed: DeployedStack) -> Any:
    return deployed.client("s3")


@pytest.fixture
def invoke(deployed: DeployedStack) -> Callable[[dict[str, Any]], dict[str, Any]]:
    context = deployed.context("lake-writer")

    def call(event: dict[str, Any]) -> dict[str, Any]:
        response: dict[str, Any] = handler.lambda_handler(event, context)
        return json.loads(json.dumps(response))  # as Lambda serialises it

    return call


def _keys(s3: Any, bucket: str) -> dict[str, str]:
    """Key -> ETag of every object in ``bucket``."""
    paginator = s3.get_paginator("list_objects_v2")
    return {
        o["Key"]: o["ETag"]
        for page in paginator.paginate(Bucket=bucket)
        for o in page.get("Contents", [])
    }


def _lake_ids(lake: LakeCatalog, event_types: set[str]) -> Counter[str]:
    """Event id -> rows, over the lake's tables of ``event_types``."""
    seen: Counter[str] = Counter()
    for event_type in event_types:
        table = lake.table(event_type).scan().to_arrow()
        assert table.schema.field("occurred_at").type == pa.timestamp("us", tz="UTC")
        seen.update(table["event_id"].to_pylist())
    return seen


def test_batch_lands_in_the_lake_and_redelivery_duplicates_nothing(
    buckets: dict[str, str], s3: Any, invoke: Any, lake: LakeCatalog
) -> None:
    events = sample_events(200)
    records = mixed_batch(events)
    batch = kinesis_event(records)

    assert invoke(batch) == {"batchItemFailures": []}
    event_types = {e["metadata"]["event_type"] for e in events}
    snapshots = {t: lake.table(t).current_snapshot().snapshot_id for t in event_types}
    assert invoke(batch) == {"batchItemFailures": []}

    # The retry found every record under the watermark: no commit, no new snapshot.
    assert {t: lake.table(t).current_snapshot().snapshot_id for t in event_types} == snapshots
    last = int(records[-1]["kinesis"]["sequenceNumber"])
    assert {watermark_of(lake.table(t), "shardId-000000000006") for t in event_types} == {last}
    objects = _keys(s3, buckets["lake"])
    # Only the tables' data and metadata: the archive is the archiver's.
    assert objects and all(k.split("/")[1] in ("data", "metadata") for k in objects)
    assert _lake_ids(lake, event_types) == Counter(e["metadata"]["event_id"] for e in events)


def test_one_decimal_too_wide_among_600_good_events_is_the_lakes_poison_alone(
    buckets: dict[str, str],
    s3: Any,
    invoke: Any,
    deployed: DeployedStack,
    lake: LakeCatalog,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    events = sample_events(600)
    bad = unchecked_bytes(too_wide_transaction())
    records = [
        *plain_records(events[:300]),
        kinesis_record(bad, "pk-too-wide", 301),
        *plain_records(events[300:], first=302),
    ]
    batch = kinesis_event(records)

    assert invoke(batch) == {"batchItemFailures": []}

    event_types = {e["metadata"]["event_type"] for e in events}
    assert _lake_ids(lake, event_types) == Counter(e["metadata"]["event_id"] for e in events)
    quarantined = _keys(s3, buckets["quarantine"])
    key = f"lake-writer/shardId-000000000006/{sequence_number(301)}-0"
    assert sorted(quarantined) == [f"{key}.avro", f"{key}.json"]
    assert s3.get_object(Bucket=buckets["quarantine"], Key=f"{key}.avro")["Body"].read() == bad
    report = json.loads(
        s3.get_object(Bucket=buckets["quarantine"], Key=f"{key}.json")["Body"].read()
    )
    assert report["reason"] and report["size"] == len(bad)

    # The archiver, in its own environment, holds all 601 records, the lake's poison with them.
    archiver = deployed.isolated("archiver")
    with monkeypatch.context() as env:
        for name, value in archiver.env.items():
            env.setenv(name, value)
        archiver_handler.archiver_for.cache_clear()
        response = archiver_handler.lambda_handler(batch, deployed.context("archiver"))
    assert json.loads(json.dumps(response)) == {"batchItemFailures": []}
    archive_bucket = archiver.buckets["archive"]
    archived = [
        entry
        for key in _keys(s3, archive_bucket)
        for entry in read_archive(s3.get_object(Bucket=archive_bucket, Key=key)["Body"].read())
    ]
    assert len(archived) == 601
    assert {a.record.sequence_number for a in archived} == {
        r["kinesis"]["sequenceNumber"] for r in records
    }
    assert bad in {a.record.data for a in archived}


def test_poison_records_are_quarantined_and_the_batch_goes_on(
    buckets: dict[str, str], s3: Any, invoke: Any
) -> None:
    lake_bucket, quarantine_bucket = buckets["lake"], buckets["quarantine"]
    events = sample_events(20)
    records = [*mixed_batch(events), kinesis_record(b"not an event", "pk-poison", 90)]

    assert invoke(kinesis_event(records)) == {"batchItemFailures": []}

    quarantined = sorted(_keys(s3, quarantine_bucket))
    seq = records[-1]["kinesis"]["sequenceNumber"]
    assert quarantined == [
        f"lake-writer/shardId-000000000006/{seq}-0.avro",
        f"lake-writer/shardId-000000000006/{seq}-0.json",
    ]
    assert sum(1 for key in _keys(s3, lake_bucket) if key.endswith(".parquet")) >= 1
    assert "/data/dt=" in next(k for k in _keys(s3, lake_bucket) if k.endswith(".parquet"))


def test_an_unwritable_lake_fails_the_whole_batch_and_the_retry_repairs_it(
    buckets: dict[str, str], s3: Any, invoke: Any
) -> None:
    lake_bucket = buckets["lake"]
    events = sample_events(20)
    records = mixed_batch(events)
    s3.delete_bucket(Bucket=lake_bucket)

    response = invoke(kinesis_event(records))

    failed = [f["itemIdentifier"] for f in response["batchItemFailures"]]
    assert failed == [r["kinesis"]["sequenceNumber"] for r in records]
    s3.create_bucket(Bucket=lake_bucket)
    assert invoke(kinesis_event(records)) == {"batchItemFailures": []}
    assert _keys(s3, lake_bucket)


def test_an_event_re_put_at_another_sequence_number_lands_once(
    invoke: Any, lake: LakeCatalog
) -> None:
    """A producer's retry after a lost response, or a replay: the same event, a new record."""
    events = sample_events(40)
    assert invoke(kinesis_event(plain_records(events))) == {"batchItemFailures": []}
    again = plain_records(events[::2], first=1000)  # every other event, at new sequence numbers

    assert invoke(kinesis_event(again)) == {"batchItemFailures": []}

    event_types = {e["metadata"]["event_type"] for e in events}
    assert _lake_ids(lake, event_types) == Counter(e["metadata"]["event_id"] for e in events)
