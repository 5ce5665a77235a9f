"""The lake writer's handler, wrapped so that delivery and S3 misbehave the ways AWS allows.

Each wrapper is named as a function's handler (``tests.integration.lake_once_handlers.<name>``)
and invoked by the local runtime in-process, with the function's environment; it calls the real
``functions.lake_writer.handler.lambda_handler``. What they did is counted in :data:`COUNTS`;
:func:`reset` forgets it (and the cached lake writers) between runs.

* :func:`deliver_twice` - every batch reaches the lake writer twice, back to back.
* :func:`crash_midway` - on a batch's first delivery the lake writer puts the first half of
  the batch's objects (under the batch's own keys), then the function crashes: a function
  error, so the runtime delivers the same records again and the retry overwrites those keys.
* :func:`s3_faults` - on the first delivery of one batch in :data:`S3_FAULT_ONE_IN`, the
  lake writer's filesystem fails the :data:`S3_FAULT_AT`-th object it opens for writing
  (an ``OSError``, as pyarrow raises for a failed ``PutObject`` or multipart upload); the
  writer reports the whole batch failed and the runtime re-delivers it.

How the faults are injected: pyarrow's S3 client is C++, not boto3, so botocore's event hooks
(what the projector's throttling faults use) never see its requests. Instead the wrapper
swaps, for one invocation, the object store of the very ``LakeWriter`` the handler uses (the
one ``lake_writer_for`` caches) for one over a filesystem that delegates to the real S3
filesystem and fails as described. Everything else - decoding, keys, Parquet, the archive,
the batch response - is the real handler's.

Why :func:`crash_midway` does not run the handler on half of the *records*, as the projector's
wrapper does: the lake writer names its objects after the range of the batch it was given,
so a half-batch invocation writes ``<shard>-<first>-<middle>`` objects that no delivery of
the whole batch overwrites. Lambda only ever gives the function part of a batch when it
bisects, which is why the lake writer's mapping must have ``BisectBatchOnFunctionError``
false; a crash of the real function leaves some of the *whole* batch's objects written.
"""

from __future__ import annotations

import threading
import zlib
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pyarrow.fs as pafs

from functions.lake_writer import handler as lake_handler
from pipelines.adapters.objects import ObjectStore, ObjectWrite
from pipelines.consumers.config import LakeWriterSettings
from pipelines.stream.records import shard_id_of

COUNTS: Counter[str] = Counter()
_SEEN: set[str] = set()  # stems of batches delivered before

# One batch in this many (by a hash of its key stem) meets an S3 fault on its first delivery.
S3_FAULT_ONE_IN = 2
S3_FAULT_AT = 2  # the object, in the order opened, whose write fails


def reset() -> None:
    COUNTS.clear()
    _SEEN.clear()
    lake_handler.lake_writer_for.cache_clear()


def _write(event: dict[str, Any], context: Any) -> Any:
    COUNTS["invocations"] += 1
    return lake_handler.lambda_handler(event, context)


def _first_delivery(event: dict[str, Any]) -> str | None:
    """The batch's key stem if it was never delivered before, else ``None``."""
    records = event["Records"]
    first, last = records[0], records[-1]
    stem = (
        f"{shard_id_of(first['eventID'])}-{first['kinesis']['sequenceNumber']}-"
        f"{last['kinesis']['sequenceNumber']}"
    )
    if stem in _SEEN:
        return None
    _SEEN.add(stem)
    return stem


@contextmanager
def _store(make: Callable[[ObjectStore], ObjectStore]) -> Iterator[None]:
    """The handler's lake writer puts objects through ``make(its store)`` meanwhile."""
    writer = lake_handler.lake_writer_for(LakeWriterSettings.from_env()).consumer
    real = writer.store
    writer.store = make(real)
    try:
        yield
    finally:
        replaced, writer.store = writer.store, real
        if replaced._pool is not None:
            replaced._pool.shutdown(wait=True)


def deliver_twice(event: dict[str, Any], context: Any) -> Any:
    """The batch twice, as a duplicate invocation would bring it; the second answer counts."""
    _write(event, context)
    return _write(event, context)


class MidBatchCrash(RuntimeError):
    """The function died after part of its batch's objects were written."""


class _CrashingStore(ObjectStore):
    """Puts the first half of a batch's objects, one by one, then dies."""

    def put_all(self, writes: Sequence[ObjectWrite]) -> None:
        half = len(writes) // 2
        for write in writes[:half]:
            self.put(*write)
        COUNTS["objects_before_crash"] += half
        raise MidBatchCrash(f"crashed after writing {half} of {len(writes)} objects")


def crash_midway(event: dict[str, Any], context: Any) -> Any:
    """A batch's first delivery writes half its objects, then the function crashes."""
    if _first_delivery(event) is None:
        return _write(event, context)
    with _store(lambda real: _CrashingStore(real.filesystem, concurrency=1)):
        response = _write(event, context)
    failed = len(response.get("batchItemFailures") or [])
    if failed != len(event["Records"]):  # the writer caught the crash and failed every record
        raise AssertionError(f"expected the whole batch to fail: {response}")
    COUNTS["crashes"] += 1
    raise MidBatchCrash(f"the function died part-way through {len(event['Records'])} records")


class FlakyFilesystem:
    """A pyarrow filesystem's stand-in: the ``fail_at``-th output stream opened raises.

    Only what :class:`~pipelines.adapters.objects.ObjectStore` uses is provided (``type_name``
    and ``open_output_stream``); the rest goes to the real filesystem.
    """

    def __init__(self, real: pafs.FileSystem, fail_at: int) -> None:
        self.real = real
        self.type_name = real.type_name
        self.fail_at = fail_at
        self.opened = 0
        self._lock = threading.Lock()

    def open_output_stream(self, path: str, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            self.opened += 1
            fail = self.opened == self.fail_at
        if fail:
            COUNTS["s3_faults"] += 1
            raise OSError(f"When uploading part for key '{path}': AWS Error SLOW_DOWN (injected)")
        return self.real.open_output_stream(path, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def _faulty(stem: str) -> bool:
    return zlib.crc32(stem.encode()) % S3_FAULT_ONE_IN == 0


def s3_faults(event: dict[str, Any], context: Any) -> Any:
    """Some batches' first delivery meets a failed S3 write part-way through the batch."""
    stem = _first_delivery(event)
    if stem is None or not _faulty(stem):
        return _write(event, context)
    with _store(
        lambda real: ObjectStore(
            FlakyFilesystem(real.filesystem, S3_FAULT_AT),
            concurrency=real.concurrency,
        )
    ):
        response = _write(event, context)
    if response.get("batchItemFailures"):
        COUNTS["failed_batches"] += 1
    return response
