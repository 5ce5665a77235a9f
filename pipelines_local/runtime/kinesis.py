"""A Kinesis event source mapping, played locally: poll every shard, invoke, checkpoint.

Per shard, one batch is in flight at a time and records are delivered in order. What a batch's
outcome does, as AWS documents it:

* success - checkpoint at the batch's last record.
* ``batchItemFailures`` (with ``ReportBatchItemFailures``) - checkpoint just before the lowest
  failed sequence number and re-deliver everything from it on (a retry). An empty, null or
  unknown ``itemIdentifier`` fails the whole batch.
* function error (the handler raised) or a whole-batch failure - with
  ``BisectBatchOnFunctionError`` a batch of two or more records is split in halves, which are
  delivered in order; splitting does not use up retries. Otherwise (or for a single record)
  the batch is retried, with backoff, up to ``MaximumRetryAttempts``.
* retries exhausted, or records older than ``MaximumRecordAgeInSeconds`` - their shard and
  sequence range go to the on-failure destination (if any) and the shard moves on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from pipelines.stream.aggregation import user_record_count
from pipelines_local.runtime.checkpoints import CheckpointStore
from pipelines_local.runtime.destinations import (
    RECORD_AGE_EXCEEDED,
    RETRY_ATTEMPTS_EXHAUSTED,
    Destinations,
    FailedBatch,
    invocation_record,
)
from pipelines_local.runtime.discovery import INFINITE, MappingConfig
from pipelines_local.runtime.events import StreamRecord, kinesis_event
from pipelines_local.runtime.invoker import Invoker
from pipelines_local.runtime.options import RuntimeOptions
from pipelines_local.runtime.responses import read_batch_response
from pipelines_local.runtime.shards import PendingBatch, ShardReader, stream_name
from pipelines_local.runtime.stats import MappingStats

logger = logging.getLogger(__name__)


class KinesisPoller:
    """Drives one Kinesis mapping: every shard round-robin, one step at a time."""

    def __init__(
        self,
        mapping: MappingConfig,
        kinesis: Any,
        invoker: Invoker,
        checkpoints: CheckpointStore,
        destinations: Destinations,
        options: RuntimeOptions | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.mapping = mapping
        self.stats = MappingStats()
        self._kinesis = kinesis
        self._invoker = invoker
        self._checkpoints = checkpoints
        self._destinations = destinations
        self._options = options or RuntimeOptions()
        self._clock = clock
        self._shards: dict[str, ShardReader] = {}
        self._listed_at: float | None = None
        self.max_retries = mapping.maximum_retry_attempts
        if self.max_retries == INFINITE:
            self.max_retries = self._options.infinite_retry_cap
            logger.warning(
                "%s: MaximumRetryAttempts is -1 (retry until the record expires); "
                "the local runtime stops after %d retries",
                mapping.label,
                self.max_retries,
            )

    # -- the loop's interface ------------------------------------------------------------

    def step(self) -> bool:
        """Give every shard one turn; return True if any shard invoked the function."""
        self._refresh_shards()
        worked = False
        for reader in list(self._shards.values()):
            if self._ready(reader):
                worked = self._step_shard(reader) or worked
        return worked

    def drained(self) -> bool:
        """Every shard has caught up and nothing is buffered or waiting to be retried."""
        return all(reader.idle for reader in self._shards.values())

    # -- one shard's turn ----------------------------------------------------------------

    def _ready(self, reader: ShardReader) -> bool:
        if reader.finished or self._clock() < reader.not_before:
            return False
        parents = [self._shards.get(p) for p in reader.parent_ids]
        return all(parent is None or parent.finished for parent in parents)

    def _step_shard(self, reader: ShardReader) -> bool:
        if reader.pending:
            self._deliver(reader, reader.pending.popleft())
            return True
        now = self._clock()
        if len(reader.buffer) < self.mapping.batch_size:
            checkpoint = self._checkpoints.get(self.mapping.uuid, reader.shard_id)
            limit = max(self.mapping.batch_size, 100)
            reader.fetch(
                self._kinesis,
                self.mapping,
                checkpoint,
                min(limit, self._options.max_records_per_fetch),
                now,
            )
        if not reader.buffer or not self._batch_ready(reader, now):
            return False
        records = reader.take(self.mapping.batch_size, self._options.max_payload_bytes)
        self._deliver(reader, PendingBatch(records))
        return True

    def _batch_ready(self, reader: ShardReader, now: float) -> bool:
        window = self.mapping.batching_window_seconds
        if window <= 0 or len(reader.buffer) >= self.mapping.batch_size or reader.end_of_shard:
            return True
        since = reader.buffered_since if reader.buffered_since is not None else now
        return now - since >= window

    def _deliver(self, reader: ShardReader, pending: PendingBatch) -> None:
        batch = self._drop_expired(reader, pending)
        if batch is None:
            return
        mapping = self.mapping
        invocation = self._invoker.invoke(mapping.function, kinesis_event(batch.records, mapping))
        self.stats.batches += 1
        self.stats.records_delivered += len(batch.records)
        self.stats.retries += 1 if batch.invocations else 0
        self.stats.timeouts += 1 if invocation.timed_out else 0
        batch.invocations += 1
        batch.last_request_id = invocation.request_id
        batch.last_function_error = invocation.function_error
        if invocation.failed:
            self.stats.function_errors += 1
            self._failed(reader, batch)
            return
        if not mapping.report_batch_item_failures:
            self._settle(reader, batch.records)
            return
        ids = {record.sequence_number: record for record in batch.records}
        outcome = read_batch_response(invocation.response, ids)
        if outcome.whole_batch_failed:
            logger.warning(
                "%s %s: whole batch failed: %s", mapping.label, reader.shard_id, outcome.reason
            )
            batch.last_function_error = batch.last_function_error or "BatchItemFailure"
            self._failed(reader, batch)
        elif outcome.failed_ids:
            self.stats.partial_failures += 1
            lowest = min(int(sequence) for sequence in outcome.failed_ids)
            done = [r for r in batch.records if r.sequence < lowest]
            rest = [r for r in batch.records if r.sequence >= lowest]
            if done:
                self._settle(reader, done)
            self._retry(
                reader,
                PendingBatch(
                    rest,
                    batch.attempts,
                    batch.invocations,
                    invocation.request_id,
                    "BatchItemFailure",
                ),
            )
        else:
            self._settle(reader, batch.records)

    def _failed(self, reader: ShardReader, batch: PendingBatch) -> None:
        if self.mapping.bisect_on_error and len(batch.records) > 1:
            first, second = batch.halves()
            reader.pending.appendleft(second)
            reader.pending.appendleft(first)
            self.stats.bisections += 1
            logger.info(
                "%s %s: batch of %d failed, bisected",
                self.mapping.label,
                reader.shard_id,
                len(batch.records),
            )
            return
        self._retry(reader, batch)

    def _retry(self, reader: ShardReader, batch: PendingBatch) -> None:
        """Use one retry on ``batch``, or give up on it once they are spent."""
        batch.attempts += 1
        if batch.attempts > self.max_retries:
            self._give_up(
                reader,
                FailedBatch(
                    batch.records,
                    RETRY_ATTEMPTS_EXHAUSTED,
                    batch.invocations,
                    batch.last_request_id,
                    batch.last_function_error,
                ),
            )
            return
        reader.pending.appendleft(batch)
        reader.not_before = self._clock() + self._options.retry_delay(batch.attempts)

    def _drop_expired(self, reader: ShardReader, batch: PendingBatch) -> PendingBatch | None:
        """Give up on the leading records older than the maximum age; the rest go on."""
        max_age = self.mapping.maximum_record_age_seconds
        if max_age == INFINITE:
            return batch
        oldest_allowed = self._clock() - max_age
        expired = 0
        for index, record in enumerate(batch.records):
            if record.approximate_arrival < oldest_allowed:
                expired = index + 1
        if not expired:
            return batch
        self.stats.records_expired += expired
        self._give_up(
            reader,
            FailedBatch(
                batch.records[:expired],
                RECORD_AGE_EXCEEDED,
                batch.invocations,
                batch.last_request_id,
                batch.last_function_error,
            ),
        )
        if expired == len(batch.records):
            return None
        return PendingBatch(batch.records[expired:], batch.attempts, batch.invocations)

    def _give_up(self, reader: ShardReader, failed: FailedBatch) -> None:
        mapping = self.mapping
        first, last = failed.records[0], failed.records[-1]
        destination = mapping.on_failure_destination
        logger.warning(
            "%s %s: giving up on %d records %s..%s (%s)%s",
            mapping.label,
            reader.shard_id,
            len(failed.records),
            first.sequence_number,
            last.sequence_number,
            failed.condition,
            f"; coordinates sent to {destination}" if destination else "; no destination",
        )
        if destination:
            document = invocation_record(failed, mapping, self._clock())
            self._destinations.send(destination, document)
            self.stats.records_dead_lettered += len(failed.records)
        else:
            self.stats.records_discarded += len(failed.records)
        self._checkpoint(reader, last)

    def _settle(self, reader: ShardReader, records: list[StreamRecord]) -> None:
        self.stats.records_succeeded += len(records)
        self.stats.events_succeeded += sum(user_record_count(r.data) for r in records)
        self._checkpoint(reader, records[-1])

    def _checkpoint(self, reader: ShardReader, record: StreamRecord) -> None:
        self._checkpoints.put(
            self.mapping.uuid,
            reader.shard_id,
            record.sequence_number,
            source=self.mapping.source_arn,
            function=self.mapping.function.name,
        )

    # -- shards ----------------------------------------------------------------------

    def _refresh_shards(self) -> None:
        now = self._clock()
        if (
            self._listed_at is not None
            and now - self._listed_at < self._options.shard_refresh_seconds
        ):
            return
        self._listed_at = now
        paginator = self._kinesis.get_paginator("list_shards")
        for page in paginator.paginate(StreamName=stream_name(self.mapping.source_arn)):
            for shard in page.get("Shards", []):
                shard_id = shard["ShardId"]
                if shard_id in self._shards:
                    continue
                parents = tuple(
                    p for p in (shard.get("ParentShardId"), shard.get("AdjacentParentShardId")) if p
                )
                self._shards[shard_id] = ShardReader(shard_id, parents)
