"""Whole objects through a pyarrow filesystem: S3 in production, a folder in tests.

Writes go through :class:`pyarrow.fs.S3FileSystem` (single or multipart uploads
are pyarrow's business). A failed write raises
:class:`~pipelines.errors.TransientError`, so the batch is re-delivered.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlparse

import pyarrow.fs as pafs

from pipelines.errors import TransientError

ObjectWrite = tuple[str, str, bytes]  # bucket, key, data


def s3_filesystem(
    region: str,
    endpoint_url: str | None = None,
    *,
    access_key: str | None = None,
    secret_key: str | None = None,
) -> pafs.S3FileSystem:
    """pyarrow's S3 filesystem, on AWS or an emulator; credentials from the default chain
    unless given."""
    options: dict[str, Any] = {
        "region": region,
        "check_directory_existence_before_creation": False,
    }
    if access_key and secret_key:
        options.update(access_key=access_key, secret_key=secret_key)
    if endpoint_url is not None:
        endpoint = urlparse(endpoint_url)
        options.update(
            endpoint_override=endpoint.netloc or endpoint_url, scheme=endpoint.scheme or "http"
        )
    return pafs.S3FileSystem(**options)


class ObjectStore:
    """Puts whole objects, ``concurrency`` at a time, through a pyarrow filesystem."""

    def __init__(self, filesystem: pafs.FileSystem, *, concurrency: int = 8) -> None:
        self.filesystem = filesystem
        self.concurrency = concurrency
        self._local = filesystem.type_name != "s3"  # local folders must exist first
        self._pool: ThreadPoolExecutor | None = None

    def put(self, bucket: str, key: str, data: bytes) -> None:
        path = f"{bucket}/{key}"
        try:
            if self._local:
                self.filesystem.create_dir(path.rsplit("/", 1)[0], recursive=True)
            with self.filesystem.open_output_stream(path) as stream:
                stream.write(data)
        except OSError as exc:
            raise TransientError(f"could not write {path}: {exc}") from exc

    def put_all(self, writes: Sequence[ObjectWrite]) -> None:
        """Write every object; raises the first failure after all have been tried."""
        if len(writes) <= 1 or self.concurrency == 1:
            for bucket, key, data in writes:
                self.put(bucket, key, data)
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.concurrency, "lake-put")
        futures = [self._pool.submit(self.put, *write) for write in writes]
        errors = [f.exception() for f in futures]
        for error in errors:
            if error is not None:
                raise error
