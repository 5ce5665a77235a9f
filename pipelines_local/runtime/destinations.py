"""The on-failure destination: where the coordinates of records given up on go.

For a Kinesis source Lambda sends a JSON document with the failed batch's shard and sequence
range, not the records themselves (AWS's "invocation record")::

    {"requestContext": {"requestId", "functionArn", "condition", "approximateInvokeCount"},
     "responseContext": {"statusCode", "executedVersion", "functionError"},
     "version": "1.0", "timestamp": "<ISO 8601>",
     "KinesisBatchInfo": {"shardId", "startSequenceNumber", "endSequenceNumber",
                          "approximateArrivalOfFirstRecord", "approximateArrivalOfLastRecord",
                          "batchSize", "streamArn"}}

``condition`` is ``RetryAttemptsExhausted`` or ``RecordAgeExceeded``. SQS queues and SNS topics
are supported as destinations, as for Lambda.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from pipelines_local.runtime.discovery import MappingConfig
from pipelines_local.runtime.errors import DestinationError, RuntimeConfigError
from pipelines_local.runtime.events import StreamRecord

logger = logging.getLogger(__name__)

RETRY_ATTEMPTS_EXHAUSTED = "RetryAttemptsExhausted"
RECORD_AGE_EXCEEDED = "RecordAgeExceeded"


@dataclass(frozen=True)
class FailedBatch:
    """Records given up on, and why."""

    records: list[StreamRecord]
    condition: str
    invoke_count: int
    request_id: str | None = None
    function_error: str | None = None


def invocation_record(failed: FailedBatch, mapping: MappingConfig, now: float) -> dict[str, Any]:
    """The document Lambda sends to a Kinesis mapping's on-failure destination."""
    first, last = failed.records[0], failed.records[-1]
    return {
        "requestContext": {
            "requestId": failed.request_id or str(uuid.uuid4()),
            "functionArn": mapping.function.arn,
            "condition": failed.condition,
            "approximateInvokeCount": failed.invoke_count,
        },
        "responseContext": {
            "statusCode": 200,
            "executedVersion": mapping.function.version,
            "functionError": failed.function_error or "",
        },
        "version": "1.0",
        "timestamp": iso_timestamp(now),
        "KinesisBatchInfo": {
            "shardId": first.shard_id,
            "startSequenceNumber": first.sequence_number,
            "endSequenceNumber": last.sequence_number,
            "approximateArrivalOfFirstRecord": iso_timestamp(first.approximate_arrival),
            "approximateArrivalOfLastRecord": iso_timestamp(last.approximate_arrival),
            "batchSize": len(failed.records),
            "streamArn": mapping.source_arn,
        },
    }


def iso_timestamp(epoch_seconds: float) -> str:
    """``2019-11-14T00:38:06.021Z``: UTC with milliseconds, as Lambda writes them."""
    moment = datetime.fromtimestamp(epoch_seconds, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class Destinations:
    """Sends invocation records to SQS queues and SNS topics named by ARN."""

    def __init__(self, client_factory: Callable[[str], Any]) -> None:
        self._client = client_factory
        self._queue_urls: dict[str, str] = {}

    def send(self, destination_arn: str, document: dict[str, Any]) -> None:
        """Deliver ``document``; raise :class:`DestinationError` if the destination refuses it."""
        try:
            self._send(destination_arn, json.dumps(document))
        except (ClientError, BotoCoreError) as exc:
            raise DestinationError(f"on-failure destination {destination_arn}: {exc}") from exc

    def _send(self, destination_arn: str, body: str) -> None:
        service = destination_arn.split(":")[2] if destination_arn.count(":") >= 5 else ""
        if service == "sqs":
            self._client("sqs").send_message(
                QueueUrl=self._queue_url(destination_arn), MessageBody=body
            )
        elif service == "sns":
            self._client("sns").publish(TopicArn=destination_arn, Message=body)
        else:
            raise RuntimeConfigError(
                f"on-failure destination {destination_arn!r}: only SQS and SNS are supported"
            )

    def _queue_url(self, queue_arn: str) -> str:
        if queue_arn not in self._queue_urls:
            parts = queue_arn.split(":")
            response = self._client("sqs").get_queue_url(
                QueueName=parts[5], QueueOwnerAWSAccountId=parts[4]
            )
            self._queue_urls[queue_arn] = response["QueueUrl"]
        return self._queue_urls[queue_arn]
