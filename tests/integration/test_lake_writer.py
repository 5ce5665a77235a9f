"""The lake writer's Lambda handler against the embedded emulator (S3 through pyarrow)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from functions.lake_writer import handler
from pipelines.consumers.archive import read_archive
from pipelines.consumers.lake import table_name
from pipelines.contract.codec import encode_event
from tests.kinesis_events import kinesis_event, kinesis_record
from tests.stack import DeployedStack
from tests.unit.test_lake_writer import mixed_batch, sample_events

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
    objects = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
    return {o["Key"]: o["ETag"] for o in objects}


def test_batch_lands_in_the_lake_and_the_archive_and_redelivery_duplicates_nothing(
    buckets: dict[str, str], s3: Any, invoke: Any, deployed: DeployedStack
) -> None:
    lake_bucket, archive_bucket = buckets["lake"], buckets["archive"]
    events = sample_events(200)
    batch = kinesis_event(mixed_batch(events))

    assert invoke(batch) == {"batchItemFailures": []}
    lake, archive = _keys(s3, lake_bucket), _keys(s3, archive_bucket)
    assert invoke(batch) == {"batchItemFailures": []}

    assert (
        _keys(s3, lake_bucket) == lake and _keys(s3, archive_bucket) == archive
    )  # same keys, same bytes
    filesystem = deployed.workspace.filesystem()
    seen: Counter[str] = Counter()
    for event_type in {e["metadata"]["event_type"] for e in events}:
        dataset = ds.dataset(
            f"{lake_bucket}/{table_name(event_type)}",
            filesystem=filesystem,
            format="parquet",
            partitioning="hive",
        )
        table = dataset.to_table()
        assert table.schema.field("occurred_at").type == pa.timestamp("ms", tz="UTC")
        seen.update(table["event_id"].to_pylist())
    assert seen == Counter(e["metadata"]["event_id"] for e in events)
    archived = [
        entry
        for key in archive
        for entry in read_archive(s3.get_object(Bucket=archive_bucket, Key=key)["Body"].read())
    ]
    assert sorted(a.record.data for a in archived) == sorted(encode_event(e) for e in events)


def test_poison_records_are_quarantined_and_the_batch_goes_on(
    buckets: dict[str, str], s3: Any, invoke: Any
) -> None:
    archive_bucket, quarantine_bucket = buckets["archive"], buckets["quarantine"]
    events = sample_events(20)
    records = [*mixed_batch(events), kinesis_record(b"not an event", "pk-poison", 90)]

    assert invoke(kinesis_event(records)) == {"batchItemFailures": []}

    quarantined = sorted(_keys(s3, quarantine_bucket))
    seq = records[-1]["kinesis"]["sequenceNumber"]
    assert quarantined == [
        f"lake-writer/shardId-000000000006/{seq}-0.avro",
        f"lake-writer/shardId-000000000006/{seq}-0.json",
    ]
    assert sum(1 for key in _keys(s3, archive_bucket) if key.endswith(".avro")) >= 1


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
