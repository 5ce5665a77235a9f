"""Quarantine: keep a poison record's bytes, coordinates and reason in S3.

Layout (deterministic, so a re-delivered poison record overwrites itself)::

    s3://<bucket>/<consumer>/<shard>/<sequence>-<sub-sequence>.avro   the raw bytes
    s3://<bucket>/<consumer>/<shard>/<sequence>-<sub-sequence>.json   why, and where from

The ``.avro`` object also carries the error code as object metadata
(``x-amz-meta-code``). The sidecar JSON holds ``reason``, ``code``,
``consumer``, ``shard_id``, ``sequence_number``, ``sub_sequence_number``,
``partition_key``, ``approximate_arrival`` (ISO 8601, or null), ``aggregated``
and ``size``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from pipelines.adapters.errors import translate
from pipelines.errors import PoisonRecordError
from pipelines.stream.records import UNKNOWN_SHARD, UserRecord

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


def quarantine_key(consumer: str, record: UserRecord, suffix: str = "avro") -> str:
    shard = record.shard_id or UNKNOWN_SHARD
    return f"{consumer}/{shard}/{record.sequence_number}-{record.sub_sequence_number}.{suffix}"


def quarantine_report(
    consumer: str, record: UserRecord, error: PoisonRecordError
) -> dict[str, Any]:
    arrival = record.approximate_arrival
    return {
        "reason": error.reason,
        "code": error.code,
        "consumer": consumer,
        "shard_id": record.shard_id,
        "sequence_number": record.sequence_number,
        "sub_sequence_number": record.sub_sequence_number,
        "partition_key": record.partition_key,
        "approximate_arrival": (
            None if arrival is None else datetime.fromtimestamp(arrival, UTC).isoformat()
        ),
        "aggregated": record.aggregated,
        "size": len(error.raw or record.data),
    }


class Quarantine:
    """Writes poison records to ``bucket`` under ``consumer/``."""

    def __init__(self, client: S3Client, bucket: str, consumer: str) -> None:
        self.client = client
        self.bucket = bucket
        self.consumer = consumer

    def keep(self, record: UserRecord, error: PoisonRecordError) -> str:
        """Store the record's bytes and the reason; returns the bytes' object key.

        Raises :class:`~pipelines.errors.TransientError` if S3 does not take
        them, so the record is reported as failed rather than lost (or
        :class:`~pipelines.errors.MisconfigurationError` when the bucket is missing or
        the function may not write to it).
        """
        key = quarantine_key(self.consumer, record)
        report = quarantine_report(self.consumer, record, error)
        try:
            self.client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=error.raw or record.data,
                ContentType="application/octet-stream",
                Metadata={"code": error.code},
            )
            self.client.put_object(
                Bucket=self.bucket,
                Key=quarantine_key(self.consumer, record, "json"),
                Body=json.dumps(report, indent=2).encode(),
                ContentType="application/json",
            )
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, f"could not quarantine s3://{self.bucket}/{key}") from exc
        return key
