"""The patches in-process: applied and undone cleanly, and Kinesis retention trimming.

Retention is at least 24 hours on AWS and in moto, so trimming is tested with moto in-process,
where a record's arrival time can be moved back; everything else about the patches is tested
over HTTP in tests/integration/test_emulator_patches.py.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.athena.models import AthenaBackend
from moto.kinesis.models import Shard, kinesis_backends

from pipelines_local.emulator.patches import apply_patches, patch_names, patched

ACCOUNT = "123456789012"
REGION = "us-east-1"
HOURS = 3600


@pytest.fixture
def kinesis(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A Kinesis client on moto in-process with the emulator patches applied."""
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with patched(), mock_aws():
        yield boto3.client(
            "kinesis",
            region_name=REGION,
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )


def _stream_with_records(kinesis: Any, count: int) -> tuple[str, str]:
    kinesis.create_stream(StreamName="events", ShardCount=1)
    kinesis.put_records(
        StreamName="events",
        Records=[{"Data": f"r{i}".encode(), "PartitionKey": "k"} for i in range(count)],
    )
    return "events", kinesis.list_shards(StreamName="events")["Shards"][0]["ShardId"]


def _age(stream_name: str, shard_id: str, first: int, last: int, hours: float) -> None:
    shard = kinesis_backends[ACCOUNT][REGION].streams[stream_name].shards[shard_id]
    for sequence_number in range(first, last + 1):
        shard.records[sequence_number].created_at -= hours * HOURS


def _trim_horizon(kinesis: Any, stream: str, shard_id: str) -> list[dict[str, Any]]:
    iterator = kinesis.get_shard_iterator(
        StreamName=stream, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    records: list[dict[str, Any]] = kinesis.get_records(ShardIterator=iterator)["Records"]
    return records


def test_records_older_than_retention_are_trimmed(kinesis: Any) -> None:
    stream, shard_id = _stream_with_records(kinesis, 10)

    _age(stream, shard_id, 1, 4, hours=25)

    records = _trim_horizon(kinesis, stream, shard_id)
    assert [r["SequenceNumber"] for r in records] == [str(n) for n in range(5, 11)]
    shard = kinesis.list_shards(StreamName=stream)["Shards"][0]
    assert shard["SequenceNumberRange"]["StartingSequenceNumber"] == "5"


def test_longer_retention_keeps_older_records(kinesis: Any) -> None:
    stream, shard_id = _stream_with_records(kinesis, 10)
    kinesis.increase_stream_retention_period(StreamName=stream, RetentionPeriodHours=48)

    _age(stream, shard_id, 1, 4, hours=25)

    assert len(_trim_horizon(kinesis, stream, shard_id)) == 10


def test_sequence_numbers_keep_increasing_after_a_shard_is_trimmed_empty(kinesis: Any) -> None:
    stream, shard_id = _stream_with_records(kinesis, 10)
    _age(stream, shard_id, 1, 10, hours=30)
    latest = kinesis.get_shard_iterator(
        StreamName=stream, ShardId=shard_id, ShardIteratorType="LATEST"
    )["ShardIterator"]

    put = kinesis.put_record(StreamName=stream, Data=b"new", PartitionKey="k")

    assert put["SequenceNumber"] == "11"
    assert [r["Data"] for r in kinesis.get_records(ShardIterator=latest)["Records"]] == [b"new"]
    assert [r["Data"] for r in _trim_horizon(kinesis, stream, shard_id)] == [b"new"]


def test_an_iterator_behind_the_trim_horizon_resumes_at_the_oldest_record(kinesis: Any) -> None:
    stream, shard_id = _stream_with_records(kinesis, 10)
    iterator = kinesis.get_shard_iterator(
        StreamName=stream,
        ShardId=shard_id,
        ShardIteratorType="AT_SEQUENCE_NUMBER",
        StartingSequenceNumber="2",
    )["ShardIterator"]

    _age(stream, shard_id, 1, 6, hours=25)

    records = kinesis.get_records(ShardIterator=iterator)["Records"]
    assert [r["SequenceNumber"] for r in records] == ["7", "8", "9", "10"]


def test_patches_are_undone_on_leaving_the_block() -> None:
    originals = (Shard.put_record, Shard.get_records)

    with patched():
        assert Shard.put_record is not originals[0]
        assert hasattr(AthenaBackend, "delete_named_query")

    assert (Shard.put_record, Shard.get_records) == originals
    assert not hasattr(AthenaBackend, "delete_named_query")


def test_disabling_the_shard_index_also_leaves_out_retention_trimming() -> None:
    from moto.kinesis.models import KinesisBackend

    original_describe = KinesisBackend.describe_stream

    with patched(disabled=["kinesis_shard_index"]):
        assert KinesisBackend.describe_stream is original_describe
        assert Shard.put_record.__module__.startswith("moto.")


def test_unknown_patch_names_are_refused() -> None:
    with pytest.raises(ValueError, match="no_such_patch"):
        apply_patches(disabled=["no_such_patch"])


def test_every_patch_has_a_distinct_name_and_a_row_in_the_adr() -> None:
    adr = (Path(__file__).parents[2] / "docs/adr/0001-emulator-patches.md").read_text()
    listed = re.findall(r"^\| \d+ \| `(\w+)` \|", adr, flags=re.MULTILINE)

    assert len(set(patch_names())) == len(patch_names()) == 11
    assert listed == patch_names()
