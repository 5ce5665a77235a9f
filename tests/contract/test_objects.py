"""Whole objects through a pyarrow filesystem: a local folder, and S3 on the emulator.

pyarrow's S3 client is its own (C++), not botocore, so moto in-process cannot stand in for
S3 here; the in-process half of this contract is pyarrow's local filesystem, the one the
lake writer's unit tests use.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow.fs as pafs
import pytest

from pipelines.adapters.objects import ObjectStore
from pipelines.errors import TransientError
from tests.stack import DeployedStack


@pytest.fixture(params=["local_folder", "emulator"])
def target(
    request: pytest.FixtureRequest, tmp_path: Path, deployed: DeployedStack
) -> Iterator[tuple[pafs.FileSystem, str]]:
    if request.param == "local_folder":
        yield pafs.LocalFileSystem(), str(tmp_path / "bucket")
    else:
        yield deployed.workspace.filesystem(), deployed.isolated("lake-writer").buckets["lake"]


def test_every_object_is_written_and_a_rewrite_replaces_it(
    target: tuple[pafs.FileSystem, str],
) -> None:
    filesystem, bucket = target
    store = ObjectStore(filesystem, concurrency=4)
    writes = [
        (bucket, f"t/dt=2026-11-0{i % 3 + 1}/s-{i}.parquet", bytes([i]) * 100) for i in range(9)
    ]

    store.put_all(writes)
    store.put_all(writes[:1])

    for _, key, data in writes:
        with filesystem.open_input_stream(f"{bucket}/{key}") as stream:
            assert stream.read() == data


def test_a_write_that_fails_is_raised_after_the_others_were_tried(
    target: tuple[pafs.FileSystem, str],
) -> None:
    filesystem, bucket = target
    store = ObjectStore(filesystem, concurrency=4)
    missing = f"{bucket}-gone" if filesystem.type_name == "s3" else "/proc/no/such/place"
    writes = [(bucket, "a.bin", b"a"), (missing, "b.bin", b"b"), (bucket, "c.bin", b"c")]

    with pytest.raises(TransientError):
        store.put_all(writes)

    with filesystem.open_input_stream(f"{bucket}/c.bin") as stream:
        assert stream.read() == b"c"
