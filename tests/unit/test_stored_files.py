"""Listing and deleting a table's files: S3 (moto in-process) and the local filesystem alike."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from pipelines.adapters.stored_files import (
    LocalFiles,
    S3Files,
    StoredFiles,
    normalized_uri,
    stored_files_for,
)
from pipelines.errors import MisconfigurationError

KEYS = ["t/data/dt=2026-11-01/a.parquet", "t/metadata/v1.metadata.json", "t2/data/b.parquet"]


@pytest.fixture(params=["s3", "local"])
def store(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[StoredFiles, str]]:
    """Files at KEYS, and the URI of the folder that holds them."""
    if request.param == "local":
        for key in KEYS:
            (tmp_path / key).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / key).write_bytes(b"x" * 3)
        yield LocalFiles(), f"file://{tmp_path}"
        return
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        s3: Any = boto3.client(
            "s3", region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t"
        )
        s3.create_bucket(Bucket="lake")
        for key in KEYS:
            s3.put_object(Bucket="lake", Key=key, Body=b"x" * 3)
        yield S3Files(s3), "s3://lake"


def test_a_listing_holds_the_files_under_the_prefix_only(store: tuple[StoredFiles, str]) -> None:
    files, root = store

    listed = list(files.list(f"{root}/t/"))

    assert sorted(f.uri for f in listed) == [normalized_uri(f"{root}/{k}") for k in KEYS[:2]]
    assert {f.size for f in listed} == {3}
    now = datetime.now(UTC)
    assert all(
        now - timedelta(minutes=5) < f.modified <= now + timedelta(minutes=1) for f in listed
    )


def test_deleted_files_are_gone_and_a_missing_one_is_no_error(
    store: tuple[StoredFiles, str],
) -> None:
    files, root = store

    files.delete([f"{root}/{KEYS[0]}", f"{root}/t/data/never-there.parquet"])

    left = sorted(f.uri for f in files.list(f"{root}/"))
    assert left == [normalized_uri(f"{root}/{k}") for k in KEYS[1:]]


def test_the_location_scheme_picks_the_storage() -> None:
    assert isinstance(stored_files_for("file:///tmp/lake/t"), LocalFiles)
    assert isinstance(stored_files_for("s3://lake/t", s3_client=object()), S3Files)  # type: ignore[arg-type]
    with pytest.raises(MisconfigurationError):
        stored_files_for("s3://lake/t")
    with pytest.raises(MisconfigurationError):
        stored_files_for("gs://lake/t")


def test_uris_compare_in_one_spelling() -> None:
    assert normalized_uri("file:/tmp//lake/./t") == "file:///tmp/lake/t"
    assert normalized_uri("/tmp/lake") == "file:///tmp/lake"
    assert normalized_uri("s3a://lake/t/x") == "s3://lake/t/x"
