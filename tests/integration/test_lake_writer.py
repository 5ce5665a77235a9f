"""The lake writer's Lambda handler against the embedded emulator (S3 through pyarrow)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pytest

from functions.lake_writer import handler
from pipelines.consumers.archive import read_archive
from pipelines.contract.codec import encode_event
from pipelines_local.catalog import table_name
from tests.kinesis_events import kinesis_event, kinesis_record
from tests.unit.test_lake_writer import mixed_batch, sample_events

pytestmark = pytest.mark.integration

LAKE, ARCHIVE, QUARANTINE = "test-lake", "test-archive", "test-lake-quarantine"


class Context:
    function_name = "pipelines-test-lake-writer"
    function_version = "$LATEST"
    invoked_function_arn = (
        "arn:aws:lambda:us-east-1:123456789012:function:pipelines-test-lake-writer"
    )
    memory_limit_in_mb = 1024
    aws_request_id = "c6af9ac6-7b61-11e6-9a41-93e812345679"
    log_group_name = "/aws/lambda/pipelines-test-lake-writer"
    log_stream_name = "2026/11/01/[$LATEST]local"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


@pytest.fixture
def s3(
    clean_emulator: Any,
    aws_env: dict[str, str],
    aws_client: Callable[[str], Any],
    monkeypatch: pytest.MonkeyPatch,
) -> Any:
    env = {
        "LAKE_BUCKET": LAKE,
        "ARCHIVE_BUCKET": ARCHIVE,
        "QUARANTINE_BUCKET": QUARANTINE,
        "POWERTOOLS_SERVICE_NAME": "lake-writer",
        "POWERTOOLS_METRICS_NAMESPACE": "PipelinesTest",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    handler.lake_writer_for.cache_clear()
    client = aws_client("s3")
    for bucket in (LAKE, ARCHIVE, QUARANTINE):
        client.create_bucket(Bucket=bucket)
    return client


def _invoke(event: dict[str, Any]) -> dict[str, Any]:
    response: dict[str, Any] = handler.lambda_handler(event, Context())
    return json.loads(json.dumps(response))  # as Lambda serialises it


def _filesystem(endpoint_url: str) -> pafs.S3FileSystem:
    endpoint = urlparse(endpoint_url)
    return pafs.S3FileSystem(
        endpoint_override=endpoint.netloc,
        scheme=endpoint.scheme,
        access_key="test",
        secret_key="test",
        region="us-east-1",
    )


def _keys(s3: Any, bucket: str) -> dict[str, str]:
    """Key -> ETag of every object in ``bucket``."""
    objects = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
    return {o["Key"]: o["ETag"] for o in objects}


def test_batch_lands_in_the_lake_and_the_archive_and_redelivery_duplicates_nothing(
    s3: Any, aws_env: dict[str, str]
) -> None:
    events = sample_events(200)
    batch = kinesis_event(mixed_batch(events))

    assert _invoke(batch) == {"batchItemFailures": []}
    lake, archive = _keys(s3, LAKE), _keys(s3, ARCHIVE)
    assert _invoke(batch) == {"batchItemFailures": []}

    assert _keys(s3, LAKE) == lake and _keys(s3, ARCHIVE) == archive  # same keys, same bytes
    filesystem = _filesystem(aws_env["AWS_ENDPOINT_URL"])
    seen: Counter[str] = Counter()
    for event_type in {e["metadata"]["event_type"] for e in events}:
        dataset = ds.dataset(
            f"{LAKE}/{table_name(event_type)}",
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
        for entry in read_archive(s3.get_object(Bucket=ARCHIVE, Key=key)["Body"].read())
    ]
    assert sorted(a.record.data for a in archived) == sorted(encode_event(e) for e in events)


def test_poison_records_are_quarantined_and_the_batch_goes_on(s3: Any) -> None:
    events = sample_events(20)
    records = [*mixed_batch(events), kinesis_record(b"not an event", "pk-poison", 90)]

    assert _invoke(kinesis_event(records)) == {"batchItemFailures": []}

    quarantined = sorted(_keys(s3, QUARANTINE))
    seq = records[-1]["kinesis"]["sequenceNumber"]
    assert quarantined == [
        f"lake-writer/shardId-000000000006/{seq}-0.avro",
        f"lake-writer/shardId-000000000006/{seq}-0.json",
    ]
    assert sum(1 for key in _keys(s3, ARCHIVE) if key.endswith(".avro")) >= 1


def test_an_unwritable_lake_fails_the_whole_batch_and_the_retry_repairs_it(s3: Any) -> None:
    events = sample_events(20)
    records = mixed_batch(events)
    s3.delete_bucket(Bucket=LAKE)

    response = _invoke(kinesis_event(records))

    failed = [f["itemIdentifier"] for f in response["batchItemFailures"]]
    assert failed == [r["kinesis"]["sequenceNumber"] for r in records]
    s3.create_bucket(Bucket=LAKE)
    assert _invoke(kinesis_event(records)) == {"batchItemFailures": []}
    assert _keys(s3, LAKE)
