"""The lake writer's Lambda handler against the embedded emulator (S3 through pyarrow).

One test also runs the archiver's handler on the same batch, in the archiver's own
environment: a record the lake cannot hold is the lake's poison and no other sink's.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from functions.archiver import handler as archiver_handler
from functions.lake_writer import handler
from pipelines.consumers.archive import read_archive
from pipelines.consumers.lake import table_name
from tests.kinesis_events import kinesis_event, kinesis_record, plain_records, sequence_number
from tests.stack import DeployedStack
from tests.unit.test_lake_writer import (
    mixed_batch,
    sample_events,
    too_wide_transaction,
    unchecked_bytes,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def buckets(
    deployed: DeployedStack, deployed_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """The lake writer's environment as Terraform set it, on copies of its buckets."""
    isolated = deployed.isolated("lake-writer")
    for name, value in isolated.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    handler.lake_writer_for.cache_clear()
    return isolated.buckets


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


def _lake_ids(deployed: DeployedStack, lake_bucket: str, event_types: set[str]) -> Counter[str]:
    """Event id -> rows, over the lake's tables of ``event_types``."""
    filesystem = deployed.workspace.filesystem()
    seen: Counter[str] = Counter()
    for event_type in event_types:
        dataset = ds.dataset(
            f"{lake_bucket}/{table_name(event_type)}",
            filesystem=filesystem,
            format="parquet",
            partitioning="hive",
        )
        table = dataset.to_table()
        assert table.schema.field("occurred_at").type == pa.timestamp("ms", tz="UTC")
        seen.update(table["event_id"].to_pylist())
    return seen


def test_batch_lands_in_the_lake_and_redelivery_duplicates_nothing(
    buckets: dict[str, str], s3: Any, invoke: Any, deployed: DeployedStack
) -> None:
    lake_bucket = buckets["lake"]
    events = sample_events(200)
    batch = kinesis_event(mixed_batch(events))

    assert invoke(batch) == {"batchItemFailures": []}
    lake = _keys(s3, lake_bucket)
    assert invoke(batch) == {"batchItemFailures": []}

    assert _keys(s3, lake_bucket) == lake  # same keys, same bytes
    assert not any(key.endswith(".avro") for key in lake)  # the archive is the archiver's
    event_types = {e["metadata"]["event_type"] for e in events}
    assert _lake_ids(deployed, lake_bucket, event_types) == Counter(
        e["metadata"]["event_id"] for e in events
    )


def test_one_decimal_too_wide_among_600_good_events_is_the_lakes_poison_alone(
    buckets: dict[str, str],
    s3: Any,
    invoke: Any,
    deployed: DeployedStack,
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
    assert _lake_ids(deployed, buckets["lake"], event_types) == Counter(
        e["metadata"]["event_id"] for e in events
    )
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
