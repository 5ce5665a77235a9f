"""The lake writer's handler, wrapped so that delivery and S3 misbehave the ways AWS allows.

Each wrapper is named as a function's handler (``tests.integration.lake_once_handlers.<name>``)
and invoked by the local runtime in-process, with the function's environment; it calls the real
``functions.lake_writer.handler.lambda_handler``. What they did is counted in :data:`COUNTS`;
:func:`reset` forgets it (and the cached lake writers) between runs.

* :func:`deliver_twice` - every batch reaches the lake writer twice, back to back.
* :func:`crash_midway` - on a batch's first delivery the lake writer commits the first half
  of the batch's tables, then the function crashes: a function error, so the runtime delivers
  the same records again and the retry meets tables that already hold part of the batch.
* :func:`longer_retry` - a batch's first delivery gives the writer only its first half (it
  commits it), then the function crashes; the retry brings the whole batch: a longer range
  than what was committed, as when a writer restarts from its checkpoint after new records
  arrived.
* :func:`shorter_retry` - a batch's first delivery commits the whole batch, then the function
  crashes; the retry gives the writer the batch in two halves (the batch size changed): each
  a shorter range, already committed.
* :func:`s3_faults` - on the first delivery of one batch in :data:`S3_FAULT_ONE_IN`, the
  :data:`S3_FAULT_AT`-th object the writer's Iceberg file IO opens for writing fails with an
  ``OSError``, as pyarrow raises for a throttled ``PutObject``; the writer reports the whole
  batch failed and the runtime re-delivers it.

How the faults are injected: pyiceberg writes data files, manifests and metadata through
pyarrow's S3 client, which is C++, not boto3, so botocore's event hooks never see its
requests. :func:`s3_faults` replaces, for one invocation, ``PyArrowFileIO.new_output`` with
one whose files fail as described; :func:`crash_midway` swaps the committer of the very
``LakeWriter`` the handler uses (the one ``lake_writer_for`` caches). The local runtime invokes
one batch at a time, so a replacement lasts exactly one invocation. Everything else - decoding,
Parquet, the Iceberg commits, the batch response - is the real handler's.
"""

from __future__ import annotations

import copy
import zlib
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pyiceberg.io.pyarrow import PyArrowFile, PyArrowFileIO

from functions.lake_writer import handler as lake_handler
from pipelines.consumers.config import LakeWriterSettings
from pipelines.consumers.lake import Commit, IcebergCommitter
from pipelines.stream.records import shard_id_of

COUNTS: Counter[str] = Counter()
_SEEN: set[str] = set()  # batches delivered before, by their first record

# One batch in this many (by a hash of its first record) meets an S3 fault on its first delivery.
S3_FAULT_ONE_IN = 2
S3_FAULT_AT = 2  # the object, in the order opened for writing, whose write fails


def reset() -> None:
    COUNTS.clear()
    _SEEN.clear()
    lake_handler.lake_writer_for.cache_clear()


def _write(event: dict[str, Any], context: Any) -> Any:
    COUNTS["invocations"] += 1
    return lake_handler.lambda_handler(event, context)


def _first_delivery(event: dict[str, Any]) -> str | None:
    """The batch's first record if the batch was never delivered before, else ``None``."""
    first = event["Records"][0]
    key = f"{shard_id_of(first['eventID'])}-{first['kinesis']['sequenceNumber']}"
    if key in _SEEN:
        return None
    _SEEN.add(key)
    return key


def _part(event: dict[str, Any], start: int, stop: int | None) -> dict[str, Any]:
    part = copy.copy(event)
    part["Records"] = event["Records"][start:stop]
    return part


class MidBatchCrash(RuntimeError):
    """The function died after part of its batch was committed."""


def deliver_twice(event: dict[str, Any], context: Any) -> Any:
    """The batch twice, as a duplicate invocation would bring it; the second answer counts."""
    _write(event, context)
    return _write(event, context)


class _CrashingCommitter(IcebergCommitter):
    """Commits the first ``commits`` tables of a batch, then dies."""

    def __init__(self, real: IcebergCommitter, commits: int) -> None:
        super().__init__(real.catalog)
        self.left = commits

    def commit(self, *args: Any, **kwargs: Any) -> Commit:
        if self.left <= 0:
            raise MidBatchCrash("crashed between two tables' commits")
        self.left -= 1
        COUNTS["commits_before_crash"] += 1
        return super().commit(*args, **kwargs)


def crash_midway(event: dict[str, Any], context: Any) -> Any:
    """A batch's first delivery commits half its tables, then the function crashes."""
    if _first_delivery(event) is None:
        return _write(event, context)
    writer = lake_handler.lake_writer_for(LakeWriterSettings.from_env()).consumer
    real = writer.committer
    writer.committer = _CrashingCommitter(real, commits=1)
    try:
        response = _write(event, context)
    finally:
        writer.committer = real
    failed = len(response.get("batchItemFailures") or [])
    if failed != len(event["Records"]):  # the writer caught the crash and failed every record
        raise AssertionError(f"expected the whole batch to fail: {response}")
    COUNTS["crashes"] += 1
    raise MidBatchCrash(f"the function died part-way through {len(event['Records'])} records")


def longer_retry(event: dict[str, Any], context: Any) -> Any:
    """The first delivery commits the batch's first half and dies; the retry is the whole."""
    records = event["Records"]
    if _first_delivery(event) is None or len(records) < 2:
        return _write(event, context)
    response = _write(_part(event, 0, len(records) // 2), context)
    if response.get("batchItemFailures"):
        raise AssertionError(f"the first half did not commit: {response}")
    COUNTS["crashes"] += 1
    raise MidBatchCrash(f"died after committing {len(records) // 2} of {len(records)} records")


def shorter_retry(event: dict[str, Any], context: Any) -> Any:
    """The first delivery commits the whole batch and dies; the retry comes in two halves."""
    records = event["Records"]
    if _first_delivery(event) is not None:
        _write(event, context)
        COUNTS["crashes"] += 1
        raise MidBatchCrash(f"died after committing {len(records)} records")
    half = len(records) // 2
    failures: list[dict[str, str]] = []
    for part in (_part(event, 0, half), _part(event, half, None)):
        if part["Records"]:
            COUNTS["halves"] += 1
            failures.extend(_write(part, context).get("batchItemFailures") or [])
    return {"batchItemFailures": failures[:1]}  # the earliest failure, as Lambda reads it


@contextmanager
def _failing_output(fail_at: int) -> Iterator[None]:
    """The ``fail_at``-th file pyiceberg opens for writing meanwhile raises ``OSError``."""
    real = PyArrowFileIO.new_output
    opened = 0

    def new_output(self: PyArrowFileIO, location: str) -> PyArrowFile:
        nonlocal opened
        opened += 1
        if opened == fail_at:
            COUNTS["s3_faults"] += 1
            raise OSError(
                f"When uploading part for key '{location}': AWS Error SLOW_DOWN (injected)"
            )
        return real(self, location)

    PyArrowFileIO.new_output = new_output  # type: ignore[method-assign]
    try:
        yield
    finally:
        PyArrowFileIO.new_output = real  # type: ignore[method-assign]


def _faulty(key: str) -> bool:
    return zlib.crc32(key.encode()) % S3_FAULT_ONE_IN == 0


def s3_faults(event: dict[str, Any], context: Any) -> Any:
    """Some batches' first delivery meets a failed S3 write part-way through the batch."""
    key = _first_delivery(event)
    if key is None or not _faulty(key):
        return _write(event, context)
    with _failing_output(S3_FAULT_AT):
        response = _write(event, context)
    if response.get("batchItemFailures"):
        COUNTS["failed_batches"] += 1
    return response
