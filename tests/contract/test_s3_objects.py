"""Whole objects through boto3's S3 client (the archiver's), in-process and on the emulator."""

from __future__ import annotations

import pytest

from pipelines.adapters.s3_objects import S3Objects
from pipelines.errors import MisconfigurationError
from tests.contract.conftest import Backend


@pytest.fixture
def bucket(backend: Backend) -> str:
    return backend.isolated("archiver").buckets["archive"]


def test_every_object_is_written_and_a_rewrite_replaces_it(backend: Backend, bucket: str) -> None:
    s3 = backend.client("s3")
    store = S3Objects(s3)
    writes = [
        (bucket, f"events/dt=2026-11-01/hour=0{i}/s-1-9.avro", bytes([i]) * 50) for i in range(3)
    ]

    store.put_all(writes)
    store.put_all([(bucket, writes[0][1], b"again")])

    assert s3.get_object(Bucket=bucket, Key=writes[0][1])["Body"].read() == b"again"
    for _, key, data in writes[1:]:
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == data
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 3


def test_a_missing_bucket_is_a_misconfiguration(backend: Backend, bucket: str) -> None:
    store = S3Objects(backend.client("s3"))

    with pytest.raises(MisconfigurationError, match="NoSuchBucket"):
        store.put_all([(f"{bucket}-gone", "k", b"x")])
