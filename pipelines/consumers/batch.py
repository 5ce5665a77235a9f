"""The one batch kernel: what every Kinesis consumer does the same way.

A Lambda batch is a list of Kinesis records; each succeeds or fails as a whole (a KPL
aggregate fails as a whole too) and is reported by its sequence number in
``batchItemFailures``. Lambda checkpoints at the lowest failed sequence number and
re-delivers everything after it, so every effect a consumer has must be idempotent. The
kernel does, for every consumer:

1. **decode** every record through the one decode path (:mod:`pipelines.stream.records`),
   and set aside an event whose id was seen earlier in the batch (a duplicate: the same
   event again, whatever its ``metadata.replay_id``); a *different* event under an id seen
   earlier in the batch is poison (:class:`~pipelines.errors.ConflictingDuplicateError`);
2. **quarantine** poison with its bytes and reason; a record whose poison cannot be kept
   fails (it is re-delivered, so nothing is lost);
3. hand the batch to the **consumer** (:class:`Consumer`), which does what only it does
   and fails the records whose effects did not land;
4. keep **order per key**: a record that shares an ordering key (an event's aggregate id)
   with an earlier failed record is not applied and fails too (:meth:`Batch.admit`; the
   Powertools issue 2850 that its own processors have);
5. **count** and **log** what happened, once per batch (:mod:`pipelines.consumers.metrics`),
   and report failures through Powertools as a partial batch response.

:class:`KinesisBatchKernel` is a Powertools ``BatchProcessor`` that does this in its
documented hooks: the whole batch in ``_prepare`` (records are written together, so the
work cannot be per record), then each record's outcome in ``_process_record``.
A :class:`~pipelines.errors.MisconfigurationError` is not a record's failure: it fails the
invocation, loudly, and Lambda retries the batch until the stack is fixed.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.data_classes.kinesis_stream_event import (
    KinesisStreamRecord,
)

from pipelines.consumers.metrics import (
    EVENT_TYPE,
    EVENTS_QUARANTINED,
    EVENTS_SKIPPED_DUPLICATE,
    KERNEL_METRICS,
    RECORDS_BLOCKED,
    RECORDS_FAILED,
    UNKNOWN_TYPE,
    BatchCounts,
    MetricsSink,
)
from pipelines.contract.codec import Codec, DecodedEvent, default_codec
from pipelines.errors import (
    ConflictingDuplicateError,
    MisconfigurationError,
    PoisonRecordError,
    TransientError,
)
from pipelines.stream.records import (
    DecodedRecord,
    Delivered,
    Poisoned,
    UserRecord,
    decode_lambda_record,
)

_log = logging.getLogger(__name__)


class KeyOrderError(TransientError):
    """Not applied: an earlier record in this batch with an overlapping ordering key failed."""


class QuarantineSink(Protocol):
    """What the kernel needs of :class:`pipelines.adapters.quarantine.Quarantine`."""

    def keep(self, record: UserRecord, error: PoisonRecordError) -> str: ...


@dataclass(slots=True)
class BatchRecord:
    """One Kinesis record of the batch: what it holds, and whether it failed."""

    index: int
    sequence_number: str
    keys: frozenset[str]
    decoded: DecodedRecord | None  # None when the Lambda record itself is malformed
    events: list[Delivered] = field(default_factory=list)  # in order, duplicates left out
    error: BaseException | None = None


class Batch:
    """A decoded batch, as a consumer sees it; the kernel's bookkeeping behind it."""

    def __init__(
        self, records: list[BatchRecord], counts: BatchCounts, kernel: KinesisBatchKernel
    ) -> None:
        self.records = records
        self.counts = counts
        self._kernel = kernel
        self._scanned = 0  # records before this index have had their failures noted
        self._failed_keys: set[str] = set()

    def live(self) -> list[BatchRecord]:
        """The records that have not failed, in batch order."""
        return [r for r in self.records if r.error is None]

    def fail(self, record: BatchRecord, error: BaseException) -> None:
        """Fail ``record``; its first error wins. Later records of its keys will be blocked."""
        if record.error is None:
            record.error = error
        if record.index < self._scanned:
            self._failed_keys |= record.keys

    def admit(self, record: BatchRecord) -> bool:
        """Whether ``record`` may be applied now, given every earlier record's failure so far.

        A failed record is not admitted; a record sharing a key with an earlier failed one
        is failed with :class:`KeyOrderError` and not admitted. Call it in batch order, as
        the records are applied: a failure noted after the call blocks later records only.
        """
        for earlier in self.records[self._scanned : record.index]:
            if earlier.error is not None:
                self._failed_keys |= earlier.keys
        self._scanned = max(self._scanned, record.index)
        if record.error is None and record.keys & self._failed_keys:
            record.error = KeyOrderError(
                f"record {record.sequence_number} not applied: an earlier record with "
                f"key(s) {sorted(record.keys & self._failed_keys)[:5]} failed"
            )
            self.counts.add(RECORDS_BLOCKED)
        return record.error is None

    def block_after_failures(self) -> list[BatchRecord]:
        """Fail every record after a failed one that shares a key with it; the rest, in order."""
        failed: set[str] = set()
        live = []
        for record in self.records:
            if record.error is None and record.keys & failed:
                record.error = KeyOrderError(
                    f"record {record.sequence_number} not applied: an earlier record with "
                    f"key(s) {sorted(record.keys & failed)[:5]} failed"
                )
                self.counts.add(RECORDS_BLOCKED)
            if record.error is not None:
                failed |= record.keys
            else:
                live.append(record)
        return live

    def first_error(self) -> BaseException | None:
        """The error of the first record that failed so far, if any."""
        return next((r.error for r in self.records if r.error is not None), None)

    def fail_all(self, error: BaseException) -> None:
        """Fail every record (a consumer whose writes are all or nothing), logged once."""
        if self.records:
            self._kernel.log.warning(
                "batch failed; every record reported for re-delivery",
                extra={
                    "first_sequence_number": self.records[0].sequence_number,
                    "records": len(self.records),
                    "error": f"{type(error).__name__}: {error}",
                },
            )
        for record in self.records:
            self.fail(record, error)

    def quarantine(
        self, record: BatchRecord, delivered: Delivered, error: PoisonRecordError
    ) -> bool:
        """Quarantine one of ``record``'s events that the consumer found it cannot apply.

        ``error`` says why; the bytes kept are those that arrived. False (and the record
        failed) when the quarantine did not take them.
        """
        if record.decoded is None:
            raise ValueError("a malformed record holds no events to quarantine")
        poison = type(error)(error.reason, delivered.data)
        user_record = record.decoded.user_record(delivered)
        return self._kernel.quarantine_one(self, record, user_record, poison, delivered)


class Consumer(Protocol):
    """What only one consumer does with a batch."""

    @property
    def metric_names(self) -> tuple[str, ...]:
        """The consumer's own metric names (the kernel's are added), emitted every batch."""
        ...

    def consume(self, batch: Batch) -> Any:
        """Apply the batch: fail (``batch.fail``) the records whose effects did not land.

        Records must be applied in batch order per key (``batch.admit``). Whatever is
        returned is kept as the outcome's ``detail``.
        """
        ...


@dataclass(slots=True)
class BatchOutcome:
    """One outcome per record, in batch order (``None`` = success), and the counts."""

    errors: list[BaseException | None]
    counts: BatchCounts
    detail: Any = None


class KinesisBatchKernel(BatchProcessor):
    """Powertools' ``BatchProcessor`` for Kinesis, running one :class:`Consumer` per batch.

    Use it as Powertools documents its processors::

        return process_partial_response(
            event=event, record_handler=kernel.consumer.consume, processor=kernel, context=context
        )

    :meth:`process_batch` is the same work without Powertools, for tests and tools.
    """

    def __init__(
        self,
        consumer: Consumer,
        quarantine: QuarantineSink,
        *,
        codec: Codec | None = None,
        logger: logging.Logger | Any = None,
        metrics: MetricsSink | None = None,
    ) -> None:
        super().__init__(EventType.KinesisDataStreams, raise_on_entire_batch_failure=False)
        self.consumer = consumer
        self.quarantine = quarantine
        self.codec = codec or default_codec()
        self.log = logger or _log
        self.metrics = metrics
        self._outcomes: Iterator[BaseException | None] = iter(())

    # --- Powertools' hooks --------------------------------------------------------------

    def _prepare(self) -> None:
        super()._prepare()
        consume: Callable[[Batch], Any] = self.handler
        outcome = self.process_batch(self.records, consume)
        self._outcomes = iter(outcome.errors)

    def _process_record(self, record: dict) -> tuple:
        error = next(self._outcomes)
        if error is None:
            return self.success_handler(record=record, result=None)
        info = (type(error), error, error.__traceback__)
        return self.failure_handler(record=KinesisStreamRecord(record), exception=info)

    async def _async_process_record(self, record: dict) -> tuple:
        raise TypeError("KinesisBatchKernel processes a batch at once; it has no async mode")

    # --- the batch ----------------------------------------------------------------------

    def process_batch(
        self,
        records: Sequence[Mapping[str, Any]],
        consume: Callable[[Batch], Any] | None = None,
    ) -> BatchOutcome:
        """Decode, quarantine, consume, block and count one batch; see the module docstring.

        The cyclic garbage collector is paused for the batch: decoding and planning allocate
        a few hundred thousand small acyclic objects (reference counting frees them), and a
        collector rescanning the growing heap many times over would cost about a third of
        the time. What cycles the batch leaves are collected after it.
        """
        with _gc_paused():
            return self._process(records, consume)

    def _process(
        self, records: Sequence[Mapping[str, Any]], consume: Callable[[Batch], Any] | None
    ) -> BatchOutcome:
        batch = self.decode_batch(records)
        counts = batch.counts
        for record in batch.records:
            self._quarantine_poison(batch, record)
        detail = (consume or self.consumer.consume)(batch)
        batch.block_after_failures()  # a record after a failure of its keys fails, applied or not
        for record in batch.records:
            if record.error is not None:
                counts.add(RECORDS_FAILED)
                self._log_failure(record)
        if self.metrics is not None:
            counts.emit(self.metrics)
        return BatchOutcome([r.error for r in batch.records], counts, detail)

    def decode_batch(self, records: Sequence[Mapping[str, Any]]) -> Batch:
        """Step 1 alone: the batch decoded, duplicates set aside; no I/O."""
        counts = BatchCounts((*self.consumer.metric_names, *KERNEL_METRICS))
        return Batch(self._decode(records, counts), counts, self)

    def _decode(
        self, records: Sequence[Mapping[str, Any]], counts: BatchCounts
    ) -> list[BatchRecord]:
        seen: dict[str, Delivered] = {}
        out: list[BatchRecord] = []
        with _gc_paused():  # also when decoding alone (decode_batch)
            for index, raw in enumerate(records):
                try:
                    decoded = decode_lambda_record(raw, self.codec)
                except Exception as exc:  # a malformed Lambda record: fail it, do not guess
                    kinesis = raw.get("kinesis") or {}
                    record = BatchRecord(
                        index,
                        str(kinesis.get("sequenceNumber", "")),
                        frozenset({kinesis.get("partitionKey", "")}),
                        None,
                    )
                    record.error = exc
                    out.append(record)
                    continue
                record = BatchRecord(index, decoded.sequence_number, decoded.keys(), decoded)
                events = record.events
                for delivered in decoded.events:
                    event = delivered.event
                    event_id = event.record["metadata"]["event_id"]
                    first = seen.get(event_id)
                    if first is None:
                        seen[event_id] = delivered
                        events.append(delivered)
                    elif first.data == delivered.data or _same_event(first.event, event):
                        counts.add(
                            EVENTS_SKIPPED_DUPLICATE, dimension=EVENT_TYPE, of=event.event_type
                        )
                    else:
                        error = ConflictingDuplicateError(
                            f"event_id {event_id} was used earlier in the batch by a different "
                            f"{first.event.event_type}",
                            delivered.data,
                        )
                        decoded.poison.append(Poisoned(decoded.user_record(delivered), error))
                out.append(record)
        return out

    def _quarantine_poison(self, batch: Batch, record: BatchRecord) -> None:
        if record.decoded is None:
            return
        for poisoned in record.decoded.poison:
            if not self.quarantine_one(batch, record, poisoned.record, poisoned.error, None):
                return

    def quarantine_one(
        self,
        batch: Batch,
        record: BatchRecord,
        user_record: UserRecord,
        error: PoisonRecordError,
        delivered: Delivered | None,
    ) -> bool:
        """Keep one poison entry; on failure the record fails (and is re-delivered)."""
        try:
            key = self.quarantine.keep(user_record, error)
        except MisconfigurationError:
            raise
        except Exception as exc:  # the record fails, nothing is lost
            batch.fail(record, exc)
            return False
        event_type = UNKNOWN_TYPE if delivered is None else delivered.event.event_type
        batch.counts.add(EVENTS_QUARANTINED, dimension=EVENT_TYPE, of=event_type)
        self.log.warning(
            "poison record quarantined",
            extra={
                "correlation_id": (
                    f"{user_record.sequence_number}-{user_record.sub_sequence_number}"
                ),
                "code": error.code,
                "reason": error.reason,
                "shard_id": user_record.shard_id,
                "partition_key": user_record.partition_key,
                "quarantine_key": key,
            },
        )
        return True

    def _log_failure(self, record: BatchRecord) -> None:
        error = record.error
        self.log.warning(
            "record failed; reported for re-delivery",
            extra={
                "correlation_id": record.sequence_number,
                "sequence_number": record.sequence_number,
                "error": f"{type(error).__name__}: {error}",
            },
        )


def _same_event(a: DecodedEvent, b: DecodedEvent) -> bool:
    """Whether two decodings are the same event, but for ``metadata.replay_id``."""
    if a.event_type != b.event_type:
        return False
    meta_a, meta_b = dict(a.record["metadata"]), dict(b.record["metadata"])
    meta_a.pop("replay_id", None)
    meta_b.pop("replay_id", None)
    if meta_a != meta_b:
        return False
    rest = a.record.keys() | b.record.keys()
    return all(a.record.get(k) == b.record.get(k) for k in rest if k != "metadata")


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector for the duration (nested pauses keep it off)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def freeze_heap() -> None:
    """Move everything allocated so far (modules, schemas, clients) out of the collector's sight.

    Called once a function's consumer is built, at the end of its cold start: the objects of
    the init phase live as long as the process, and a collection that rescans them on every
    batch is wasted work (``gc.freeze``, as CPython documents for pre-fork servers).
    """
    gc.collect()
    gc.freeze()
