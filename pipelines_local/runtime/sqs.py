"""An SQS event source mapping, played locally: receive, invoke, delete what succeeded.

As on AWS: messages of a successful batch are deleted; with ``ReportBatchItemFailures`` only
those not named in ``batchItemFailures`` (identifier = ``messageId``) are; after a function
error (or a malformed response) none is, and the messages come back once their visibility
timeout ends, to be retried until the queue's own redrive policy moves them to its dead-letter
queue. ``BatchSize`` and ``MaximumBatchingWindowInSeconds`` decide when a batch is invoked.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from pipelines_local.runtime.discovery import MappingConfig
from pipelines_local.runtime.events import sqs_event
from pipelines_local.runtime.invoker import Invoker
from pipelines_local.runtime.responses import read_batch_response
from pipelines_local.runtime.stats import MappingStats

logger = logging.getLogger(__name__)

_MAX_RECEIVE = 10  # SQS returns at most 10 messages a call
_QUEUE_COUNTERS = (
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
)


class SqsPoller:
    """Drives one SQS mapping."""

    def __init__(
        self,
        mapping: MappingConfig,
        sqs: Any,
        invoker: Invoker,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.mapping = mapping
        self.stats = MappingStats()
        self._sqs = sqs
        self._invoker = invoker
        self._clock = clock
        self._queue_url: str | None = None
        self._buffer: list[dict[str, Any]] = []
        self._buffered_since: float | None = None
        self._received_nothing = False

    @property
    def queue_url(self) -> str:
        if self._queue_url is None:
            parts = self.mapping.source_arn.split(":")
            response = self._sqs.get_queue_url(QueueName=parts[5], QueueOwnerAWSAccountId=parts[4])
            self._queue_url = str(response["QueueUrl"])
        return self._queue_url

    def step(self) -> bool:
        """Receive what is there; invoke once a batch is full or its window has passed."""
        now = self._clock()
        wanted = self.mapping.batch_size - len(self._buffer)
        received = self._receive(min(wanted, _MAX_RECEIVE)) if wanted > 0 else []
        self._received_nothing = not received
        if received:
            self._buffered_since = self._buffered_since or now
            self._buffer.extend(received)
        if not self._buffer or not self._batch_ready(now):
            return False
        batch, self._buffer = (
            self._buffer[: self.mapping.batch_size],
            self._buffer[self.mapping.batch_size :],
        )
        self._buffered_since = now if self._buffer else None
        self._deliver(batch)
        return True

    def drained(self) -> bool:
        """Nothing buffered, and the queue holds no message, visible, in flight or delayed."""
        if self._buffer or not self._received_nothing:
            return False
        attributes = self._sqs.get_queue_attributes(
            QueueUrl=self.queue_url, AttributeNames=list(_QUEUE_COUNTERS)
        )["Attributes"]
        return all(int(attributes.get(name, 0)) == 0 for name in _QUEUE_COUNTERS)

    def _batch_ready(self, now: float) -> bool:
        window = self.mapping.batching_window_seconds
        if window <= 0 or len(self._buffer) >= self.mapping.batch_size:
            return True
        return now - (self._buffered_since or now) >= window

    def _receive(self, count: int) -> list[dict[str, Any]]:
        response = self._sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=count,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
            WaitTimeSeconds=0,
        )
        messages: list[dict[str, Any]] = response.get("Messages", [])
        return messages

    def _deliver(self, batch: list[dict[str, Any]]) -> None:
        mapping = self.mapping
        invocation = self._invoker.invoke(mapping.function, sqs_event(batch, mapping))
        self.stats.batches += 1
        self.stats.records_delivered += len(batch)
        self.stats.timeouts += 1 if invocation.timed_out else 0
        if any(int(m.get("Attributes", {}).get("ApproximateReceiveCount", "1")) > 1 for m in batch):
            self.stats.retries += 1
        if invocation.failed:
            self.stats.function_errors += 1
            return
        succeeded = batch
        if mapping.report_batch_item_failures:
            outcome = read_batch_response(invocation.response, [m["MessageId"] for m in batch])
            if outcome.whole_batch_failed:
                logger.warning("%s: whole batch failed: %s", mapping.label, outcome.reason)
                return
            if outcome.failed_ids:
                self.stats.partial_failures += 1
                succeeded = [m for m in batch if m["MessageId"] not in outcome.failed_ids]
        self._delete(succeeded)
        self.stats.records_succeeded += len(succeeded)
        self.stats.events_succeeded += len(succeeded)

    def _delete(self, messages: list[dict[str, Any]]) -> None:
        for start in range(0, len(messages), _MAX_RECEIVE):
            chunk = messages[start : start + _MAX_RECEIVE]
            response = self._sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)
                ],
            )
            for failure in response.get("Failed", []):
                logger.warning("%s: could not delete a message: %s", self.mapping.label, failure)
