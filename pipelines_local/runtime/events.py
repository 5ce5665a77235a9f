"""Events shaped exactly as Lambda builds them for Kinesis and SQS event source mappings.

The shapes follow AWS's documented sample events (kept in ``tests/events/``):

* Kinesis: ``Records[]`` of ``{kinesis: {kinesisSchemaVersion, partitionKey, sequenceNumber,
  data (base64), approximateArrivalTimestamp (epoch seconds)}, eventSource, eventVersion,
  eventID ("<shardId>:<sequenceNumber>"), eventName, invokeIdentityArn, awsRegion,
  eventSourceARN}``.
* SQS: ``Records[]`` of ``{messageId, receiptHandle, body, attributes, messageAttributes,
  md5OfBody, eventSource, eventSourceARN, awsRegion}`` (plus ``md5OfMessageAttributes`` when
  the message has attributes).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from pipelines_local.runtime.discovery import MappingConfig


@dataclass(frozen=True, slots=True)
class StreamRecord:
    """One Kinesis record as ``GetRecords`` returned it, with its shard."""

    shard_id: str
    sequence_number: str
    partition_key: str
    data: bytes
    approximate_arrival: float  # epoch seconds

    @property
    def sequence(self) -> int:
        """The sequence number as an integer, the only safe way to order them."""
        return int(self.sequence_number)

    @property
    def event_id(self) -> str:
        return f"{self.shard_id}:{self.sequence_number}"

    @property
    def payload_size(self) -> int:
        """Roughly what the record adds to an invocation payload (base64 data and keys)."""
        return (len(self.data) + 2) // 3 * 4 + len(self.partition_key) + 400

    @classmethod
    def from_api(cls, shard_id: str, record: dict[str, Any]) -> StreamRecord:
        arrival = record.get("ApproximateArrivalTimestamp")
        return cls(
            shard_id=shard_id,
            sequence_number=record["SequenceNumber"],
            partition_key=record["PartitionKey"],
            data=bytes(record["Data"]),
            approximate_arrival=arrival.timestamp() if arrival is not None else 0.0,
        )


def kinesis_event(records: list[StreamRecord], mapping: MappingConfig) -> dict[str, Any]:
    """The event Lambda passes for a batch of Kinesis records."""
    return {
        "Records": [
            {
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": record.partition_key,
                    "sequenceNumber": record.sequence_number,
                    "data": base64.b64encode(record.data).decode("ascii"),
                    "approximateArrivalTimestamp": round(record.approximate_arrival, 3),
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": record.event_id,
                "eventName": "aws:kinesis:record",
                "invokeIdentityArn": mapping.function.role,
                "awsRegion": mapping.region,
                "eventSourceARN": mapping.source_arn,
            }
            for record in records
        ]
    }


def sqs_event(messages: list[dict[str, Any]], mapping: MappingConfig) -> dict[str, Any]:
    """The event Lambda passes for a batch of SQS messages (``ReceiveMessage`` entries)."""
    return {"Records": [sqs_record(message, mapping) for message in messages]}


def sqs_record(message: dict[str, Any], mapping: MappingConfig) -> dict[str, Any]:
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message.get("Body", ""),
        "attributes": dict(message.get("Attributes") or {}),
        "messageAttributes": {
            name: _message_attribute(value)
            for name, value in (message.get("MessageAttributes") or {}).items()
        },
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": mapping.source_arn,
        "awsRegion": mapping.region,
    }
    if message.get("MD5OfMessageAttributes"):
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record


def _message_attribute(value: dict[str, Any]) -> dict[str, Any]:
    attribute: dict[str, Any] = {
        "stringListValues": list(value.get("StringListValues") or []),
        "binaryListValues": [_b64(v) for v in value.get("BinaryListValues") or []],
        "dataType": value.get("DataType", "String"),
    }
    if "StringValue" in value:
        attribute["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        attribute["binaryValue"] = _b64(value["BinaryValue"])
    return attribute


def _b64(value: bytes | str) -> str:
    raw = value.encode() if isinstance(value, str) else bytes(value)
    return base64.b64encode(raw).decode("ascii")
