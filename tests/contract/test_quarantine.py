"""The quarantine keeps a poison record's bytes and why, in-process and on the emulator."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pipelines.adapters.quarantine import Quarantine
from pipelines.errors import CorruptRecordError, MisconfigurationError
from pipelines.stream.records import UserRecord
from tests.contract.conftest import Backend

RECORD = UserRecord("shardId-000000000001", "4959", 3, "user-7", b"\xc3\x01junk", 1.7e9, True)


@pytest.fixture
def bucket(backend: Backend) -> str:
    return backend.isolated("projector").buckets["quarantine"]


def test_the_bytes_and_the_reason_are_kept_under_a_deterministic_key(
    backend: Backend, bucket: str
) -> None:
    s3 = backend.client("s3")
    quarantine = Quarantine(s3, bucket, "projector")
    error = CorruptRecordError("body is truncated", RECORD.data)

    key = quarantine.keep(RECORD, error)
    again = quarantine.keep(RECORD, error)  # re-delivered: the same objects, overwritten

    assert key == again == "projector/shardId-000000000001/4959-3.avro"
    raw = s3.get_object(Bucket=bucket, Key=key)
    assert raw["Body"].read() == b"\xc3\x01junk"
    assert raw["Metadata"] == {"code": "corrupt_record"}
    report: dict[str, Any] = json.loads(
        s3.get_object(Bucket=bucket, Key=key.replace(".avro", ".json"))["Body"].read()
    )
    assert report["reason"] == "body is truncated"
    assert (report["partition_key"], report["sub_sequence_number"]) == ("user-7", 3)
    assert report["aggregated"] is True and report["size"] == 6
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 2


def test_a_missing_bucket_is_a_misconfiguration(backend: Backend, bucket: str) -> None:
    quarantine = Quarantine(backend.client("s3"), f"{bucket}-gone", "projector")
    with pytest.raises(MisconfigurationError, match="NoSuchBucket"):
        quarantine.keep(RECORD, CorruptRecordError("x", RECORD.data))
