"""What Lambda's on-failure destination holds: batch coordinates, read back into events.

An on-failure message carries only where a failed batch was on the stream
(``KinesisBatchInfo``: shard, first and last sequence numbers, stream ARN); the
payload stays on the stream until it expires. :func:`failed_batches` reads the
messages of a destination queue (without consuming them) and :func:`batch_events`
fetches each range from the stream, so an operator sees which events were given up on.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pipelines.contract.codec import Codec, DecodedEvent
from pipelines.errors import PoisonRecordError
from pipelines.stream.records import decode_stream_record

_RECEIVE_ROUNDS = 20


@dataclass(frozen=True, slots=True)
class FailedBatch:
    """One on-failure message's coordinates."""

    stream_arn: str
    shard_id: str
    start_sequence_number: str
    end_sequence_number: str
    condition: str


def failed_batches(sqs: Any, queue_url: str) -> list[FailedBatch]:
    """The batches recorded in an on-failure queue; messages are left in the queue."""
    seen: dict[str, FailedBatch] = {}
    receipts: list[str] = []
    for _ in range(_RECEIVE_ROUNDS):
        page = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=30, WaitTimeSeconds=0
        )
        messages = page.get("Messages", [])
        if not messages:
            break
        for message in messages:
            receipts.append(message["ReceiptHandle"])
            body = json.loads(message["Body"])
            info = body.get("KinesisBatchInfo")
            if info:
                seen[message["MessageId"]] = FailedBatch(
                    info["streamArn"],
                    info["shardId"],
                    info["startSequenceNumber"],
                    info["endSequenceNumber"],
                    body.get("requestContext", {}).get("condition", ""),
                )
    for receipt in receipts:  # visible again at once: reading is not consuming
        sqs.change_message_visibility(
            QueueUrl=queue_url, ReceiptHandle=receipt, VisibilityTimeout=0
        )
    return list(seen.values())


def batch_events(
    kinesis: Any, batch: FailedBatch, codec: Codec | None = None
) -> Iterator[DecodedEvent | PoisonRecordError]:
    """Every event in a failed batch's range, or the poison record it was."""
    iterator = kinesis.get_shard_iterator(
        StreamName=batch.stream_arn.rsplit("/", 1)[-1],
        ShardId=batch.shard_id,
        ShardIteratorType="AT_SEQUENCE_NUMBER",
        StartingSequenceNumber=batch.start_sequence_number,
    )["ShardIterator"]
    end = int(batch.end_sequence_number)
    while iterator:
        page = kinesis.get_records(ShardIterator=iterator, Limit=1000)
        for record in page["Records"]:
            if int(record["SequenceNumber"]) > end:
                return
            decoded = decode_stream_record(
                record["Data"],
                partition_key=record["PartitionKey"],
                sequence_number=record["SequenceNumber"],
                shard_id=batch.shard_id,
                codec=codec,
            )
            for delivered in decoded.events:
                yield delivered.event
            for poisoned in decoded.poison:
                yield poisoned.error
        if not page["Records"]:
            return
        iterator = page.get("NextShardIterator")
