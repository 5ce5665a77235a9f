"""Reading one shard: iterators from the checkpoint or the starting position, a read buffer."""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from pipelines_local.runtime.discovery import MappingConfig
from pipelines_local.runtime.events import StreamRecord

logger = logging.getLogger(__name__)


def stream_name(stream_arn: str) -> str:
    """``arn:aws:kinesis:REGION:ACCOUNT:stream/NAME`` to ``NAME``."""
    return stream_arn.split(":stream/", 1)[-1]


@dataclass
class PendingBatch:
    """Records to (re)deliver together, with their history.

    ``attempts`` counts the failures that used up retries; ``invocations`` every invocation of
    these records (Lambda's ``approximateInvokeCount``). Halves of a bisected batch inherit both.
    """

    records: list[StreamRecord]
    attempts: int = 0
    invocations: int = 0
    last_request_id: str | None = None
    last_function_error: str | None = None

    def halves(self) -> tuple[PendingBatch, PendingBatch]:
        middle = len(self.records) // 2
        return (
            PendingBatch(self.records[:middle], self.attempts, self.invocations),
            PendingBatch(self.records[middle:], self.attempts, self.invocations),
        )


@dataclass
class ShardReader:
    """One shard of a mapping: where reading goes on, what was read and what waits to be retried."""

    shard_id: str
    parent_ids: tuple[str, ...] = ()
    iterator: str | None = None
    read_after: str | None = None  # last sequence number fetched into the buffer
    buffer: deque[StreamRecord] = field(default_factory=deque)
    buffered_since: float | None = None
    pending: deque[PendingBatch] = field(default_factory=deque)
    not_before: float = 0.0
    caught_up: bool = False
    end_of_shard: bool = False  # closed, and every record of it fetched

    @property
    def finished(self) -> bool:
        return self.end_of_shard and not self.buffer and not self.pending

    @property
    def idle(self) -> bool:
        """Nothing buffered, nothing to retry, and the last read found nothing new."""
        return not self.buffer and not self.pending and (self.caught_up or self.end_of_shard)

    def fetch(
        self, client: Any, mapping: MappingConfig, checkpoint: str | None, limit: int, now: float
    ) -> int:
        """Read the next records into the buffer; return how many arrived."""
        if self.end_of_shard:
            return 0
        if self.iterator is None:
            self.iterator = self._new_iterator(client, mapping, checkpoint)
        try:
            response = client.get_records(ShardIterator=self.iterator, Limit=limit)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ExpiredIteratorException":
                logger.info(
                    "%s %s: iterator expired, getting a new one", mapping.label, self.shard_id
                )
                self.iterator = None
                return 0
            raise
        records = [StreamRecord.from_api(self.shard_id, r) for r in response.get("Records", [])]
        self.iterator = response.get("NextShardIterator")
        if self.iterator is None:
            self.end_of_shard = True
            logger.info("%s %s: shard closed and read to its end", mapping.label, self.shard_id)
        if records:
            if not self.buffer:
                self.buffered_since = now
            self.buffer.extend(records)
            self.read_after = records[-1].sequence_number
        self.caught_up = not records
        return len(records)

    def take(self, batch_size: int, max_payload_bytes: int) -> list[StreamRecord]:
        """Up to ``batch_size`` buffered records within the payload limit (at least one)."""
        taken: list[StreamRecord] = []
        size = 0
        while self.buffer and len(taken) < batch_size:
            record = self.buffer[0]
            if taken and size + record.payload_size > max_payload_bytes:
                break
            taken.append(self.buffer.popleft())
            size += record.payload_size
        self.buffered_since = None if not self.buffer else self.buffered_since
        return taken

    def _new_iterator(self, client: Any, mapping: MappingConfig, checkpoint: str | None) -> str:
        # By name: moto 5.2.5 loses the stream in iterators obtained by ARN.
        stream = {"StreamName": stream_name(mapping.source_arn), "ShardId": self.shard_id}
        position = self.read_after or checkpoint
        if position is not None:
            response = client.get_shard_iterator(
                **stream,
                ShardIteratorType="AFTER_SEQUENCE_NUMBER",
                StartingSequenceNumber=position,
            )
        elif mapping.starting_position == "AT_TIMESTAMP" and mapping.starting_timestamp:
            response = client.get_shard_iterator(
                **stream,
                ShardIteratorType="AT_TIMESTAMP",
                Timestamp=datetime.fromtimestamp(mapping.starting_timestamp, UTC),
            )
        else:
            kind = "LATEST" if mapping.starting_position == "LATEST" else "TRIM_HORIZON"
            response = client.get_shard_iterator(**stream, ShardIteratorType=kind)
        iterator: str = response["ShardIterator"]
        return iterator
