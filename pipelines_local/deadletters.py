"""What Lambda's on-failure destination holds: batch coordinates, turned back into events.

An on-failure message carries only where a failed batch was on the stream
(``KinesisBatchInfo``: shard, first and last sequence numbers, how many records, the
approximate arrival of the first and last, the stream ARN); the payload stays on the stream
only until it expires. The archive keeps every record that reached the stream, so the
coordinates are enough to read the batch back for as long as the archive is kept:

* :func:`failed_batches` reads the messages of a destination queue (without consuming them);
* :func:`archived_records` finds the archive objects whose ranges overlap a batch's (keys
  are ``<prefix>/dt=.../hour=../<shard>-<first>-<last>.avro``, partitioned by arrival hour,
  so only the hours around the batch's arrivals are listed) and reads the batch's records
  out of them;
* :func:`stream_records` reads the range from the stream, while it still holds it;
* :func:`recover` does both: the archive first, then the stream for what the archive does
  not hold (a batch of the archiver itself, or replayed events, which are not archived).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from pipelines.consumers.archive import HOUR_FORMAT, ArchivedEvent, read_archive
from pipelines.consumers.batch_keys import StreamRange, parse_stem
from pipelines.contract.codec import Codec
from pipelines.stream.records import decode_stream_record

logger = logging.getLogger(__name__)

_RECEIVE_ROUNDS = 20
ARCHIVE = "archive"
STREAM = "stream"
# Arrival times are approximate: list one hour either side of the batch's arrivals.
_HOUR_MARGIN = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class FailedBatch:
    """One on-failure message's coordinates."""

    stream_arn: str
    shard_id: str
    start_sequence_number: str
    end_sequence_number: str
    condition: str = ""
    batch_size: int | None = None  # Kinesis records in the batch
    first_arrival: datetime | None = None
    last_arrival: datetime | None = None
    function_arn: str = ""

    @property
    def range(self) -> StreamRange:
        return StreamRange(self.shard_id, self.start_sequence_number, self.end_sequence_number)


@dataclass(frozen=True, slots=True)
class FoundRecord:
    """One user record of a failed batch, read back from the archive or the stream."""

    shard_id: str
    sequence_number: str
    sub_sequence_number: int
    partition_key: str
    source: str  # ARCHIVE or STREAM
    event_type: str | None  # None when the bytes are not an event
    event_id: str | None
    poison_code: str | None  # set for poison: why the bytes are not an event
    size: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "shard_id": self.shard_id,
            "sequence_number": self.sequence_number,
            "sub_sequence_number": self.sub_sequence_number,
            "partition_key": self.partition_key,
            "source": self.source,
            "event_type": self.event_type,
            "event_id": self.event_id,
            "poison_code": self.poison_code,
            "size": self.size,
        }


@dataclass(frozen=True, slots=True)
class RecoveredBatch:
    """A failed batch's records, in stream order, and the Kinesis records found nowhere."""

    batch: FailedBatch
    records: list[FoundRecord] = field(default_factory=list)
    missing: int = 0  # Kinesis records of the batch neither archived nor on the stream

    def to_dict(self) -> dict[str, Any]:
        b = self.batch
        return {
            "stream_arn": b.stream_arn,
            "function_arn": b.function_arn,
            "shard_id": b.shard_id,
            "start_sequence_number": b.start_sequence_number,
            "end_sequence_number": b.end_sequence_number,
            "condition": b.condition,
            "batch_size": b.batch_size,
            "records": [r.to_dict() for r in self.records],
            "missing": self.missing,
        }


def _parse_time(text: Any) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return None


def failed_batch(document: dict[str, Any]) -> FailedBatch | None:
    """The coordinates in one on-failure document, or None if it holds none (not Kinesis)."""
    info = document.get("KinesisBatchInfo")
    if not info:
        return None
    request = document.get("requestContext") or {}
    size = info.get("batchSize")
    return FailedBatch(
        stream_arn=str(info.get("streamArn", "")),
        shard_id=str(info["shardId"]),
        start_sequence_number=str(info["startSequenceNumber"]),
        end_sequence_number=str(info["endSequenceNumber"]),
        condition=str(request.get("condition", "")),
        batch_size=int(size) if size is not None else None,
        first_arrival=_parse_time(info.get("approximateArrivalOfFirstRecord")),
        last_arrival=_parse_time(info.get("approximateArrivalOfLastRecord")),
        function_arn=str(request.get("functionArn", "")),
    )


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
            try:
                batch = failed_batch(json.loads(message["Body"]))
            except (ValueError, KeyError, TypeError):
                batch = None
            if batch is not None:
                seen[message["MessageId"]] = batch
    for receipt in receipts:  # visible again at once: reading is not consuming
        sqs.change_message_visibility(
            QueueUrl=queue_url, ReceiptHandle=receipt, VisibilityTimeout=0
        )
    return list(seen.values())


def destination_queues(lambda_client: Any, functions: dict[str, str]) -> dict[str, str]:
    """The SQS on-failure destination of each function's Kinesis mappings, by function key.

    ``functions`` maps a key (the function's name in Terraform) to the deployed name. The
    mappings are listed by function ARN (the emulator finds none by name).
    """
    out: dict[str, str] = {}
    for key, name in sorted(functions.items()):
        arn = lambda_client.get_function_configuration(FunctionName=name)["FunctionArn"]
        paginator = lambda_client.get_paginator("list_event_source_mappings")
        for page in paginator.paginate(FunctionName=arn):
            for mapping in page.get("EventSourceMappings", []):
                if ":kinesis:" not in mapping.get("EventSourceArn", ""):
                    continue
                config = mapping.get("DestinationConfig") or {}
                destination = (config.get("OnFailure") or {}).get("Destination") or ""
                if destination.startswith("arn:") and ":sqs:" in destination:
                    out[key] = destination
    return out


def queue_url(sqs: Any, queue_arn: str) -> str:
    parts = queue_arn.split(":")
    url: str = sqs.get_queue_url(QueueName=parts[5], QueueOwnerAWSAccountId=parts[4])["QueueUrl"]
    return url


# --- the archive ---------------------------------------------------------------------------


def _hour_prefixes(batch: FailedBatch, prefix: str) -> list[str]:
    """The arrival-hour folders that can hold the batch's records; the whole archive if the
    arrivals are unknown."""
    base = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
    if batch.first_arrival is None or batch.last_arrival is None:
        return [base]
    start = min(batch.first_arrival, batch.last_arrival) - _HOUR_MARGIN
    end = max(batch.first_arrival, batch.last_arrival) + _HOUR_MARGIN
    hour = start.replace(minute=0, second=0, microsecond=0)
    out = []
    while hour <= end:
        out.append(f"{base}{hour.strftime(HOUR_FORMAT)}/")
        hour += timedelta(hours=1)
    return out


def archive_keys(s3: Any, bucket: str, prefix: str, batch: FailedBatch) -> list[str]:
    """Keys of the archive objects that can hold records of the batch: of its shard, starting
    at or before its last record (the entries are then read and filtered by range)."""
    wanted = batch.range
    keys = []
    paginator = s3.get_paginator("list_objects_v2")
    for folder in _hour_prefixes(batch, prefix):
        for page in paginator.paginate(Bucket=bucket, Prefix=folder):
            for item in page.get("Contents", []):
                name = item["Key"].rsplit("/", 1)[-1]
                if not name.endswith(".avro"):
                    continue
                start = parse_stem(name.removesuffix(".avro"))
                if start is not None and start.may_hold(wanted):
                    keys.append(item["Key"])
    return sorted(set(keys))


def archived_entries(s3: Any, bucket: str, prefix: str, batch: FailedBatch) -> list[ArchivedEvent]:
    """The batch's entries (events and poison, with their bytes) as the archive holds them,
    in stream order."""
    wanted = batch.range
    found: dict[tuple[int, int], ArchivedEvent] = {}
    for key in archive_keys(s3, bucket, prefix, batch):
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        for entry in read_archive(body):
            record = entry.record
            if record.shard_id != wanted.shard_id or not wanted.holds(record.sequence_number):
                continue
            found[(int(record.sequence_number), record.sub_sequence_number)] = entry
    return [found[k] for k in sorted(found)]


def archived_records(s3: Any, bucket: str, prefix: str, batch: FailedBatch) -> list[FoundRecord]:
    """The batch's records as the archive holds them, in stream order."""
    return [
        FoundRecord(
            batch.shard_id,
            entry.record.sequence_number,
            entry.record.sub_sequence_number,
            entry.record.partition_key,
            ARCHIVE,
            entry.event_type,
            entry.event_id,
            entry.poison_code,
            len(entry.record.data),
        )
        for entry in archived_entries(s3, bucket, prefix, batch)
    ]


def redrive(
    batches: list[FailedBatch],
    *,
    s3: Any,
    archive_bucket: str,
    archive_prefix: str,
    producer: Any | None,
    replay_id: str,
    codec: Codec | None = None,
) -> dict[str, Any]:
    """Put the archived events of ``batches`` back on the stream, each once, in stream order,
    with ``metadata.replay_id`` set and everything else as archived (the same ``event_id``,
    so a consumer that had applied one skips it); a preview when ``producer`` is None.
    Poison is not put back: its bytes are the quarantine's (``pipeline quarantine``)."""
    from pipelines_local.replay import replayed

    codec = codec or Codec()
    seen: set[str] = set()
    events: list[dict[str, Any]] = []
    poison = 0
    for batch in batches:
        for entry in archived_entries(s3, archive_bucket, archive_prefix, batch):
            if entry.is_poison:
                poison += 1
                continue
            event = codec.decode(entry.record.data)
            if event.event_id in seen:  # a batch retried, then dead-lettered twice
                continue
            seen.add(event.event_id)
            events.append(replayed(event, replay_id))
    if producer is not None and events:
        producer.put_events(events)
    return {
        "replay_id": replay_id,
        "execute": producer is not None,
        "batches": len(batches),
        "events": len(events),
        "poison_skipped": poison,
    }


# --- the stream ------------------------------------------------------------------------------


def _stream_pages(kinesis: Any, batch: FailedBatch) -> Iterator[dict[str, Any]]:
    iterator = kinesis.get_shard_iterator(
        StreamName=batch.stream_arn.rsplit("/", 1)[-1],
        ShardId=batch.shard_id,
        ShardIteratorType="AT_SEQUENCE_NUMBER",
        StartingSequenceNumber=batch.start_sequence_number,
    )["ShardIterator"]
    end = int(batch.end_sequence_number)
    while iterator:
        page = kinesis.get_records(ShardIterator=iterator, Limit=1000)
        records = [r for r in page["Records"] if int(r["SequenceNumber"]) <= end]
        yield from records
        if len(records) < len(page["Records"]) or not page["Records"]:
            return
        iterator = page.get("NextShardIterator")


def stream_records(
    kinesis: Any, batch: FailedBatch, codec: Codec | None = None
) -> list[FoundRecord]:
    """The batch's records as the stream still holds them (none once it has expired them)."""
    out: list[FoundRecord] = []
    try:
        for raw in _stream_pages(kinesis, batch):
            decoded = decode_stream_record(
                raw["Data"],
                partition_key=raw["PartitionKey"],
                sequence_number=raw["SequenceNumber"],
                shard_id=batch.shard_id,
                codec=codec,
            )
            by_sub: dict[int, FoundRecord] = {}
            for delivered in decoded.events:
                record = decoded.user_record(delivered)
                by_sub[record.sub_sequence_number] = FoundRecord(
                    batch.shard_id,
                    record.sequence_number,
                    record.sub_sequence_number,
                    record.partition_key,
                    STREAM,
                    delivered.event.event_type,
                    delivered.event.event_id,
                    None,
                    len(record.data),
                )
            for poisoned in decoded.poison:
                record = poisoned.record
                known = by_sub.get(record.sub_sequence_number)
                by_sub[record.sub_sequence_number] = FoundRecord(
                    batch.shard_id,
                    record.sequence_number,
                    record.sub_sequence_number,
                    record.partition_key,
                    STREAM,
                    None if known is None else known.event_type,
                    None if known is None else known.event_id,
                    poisoned.error.code,
                    len(record.data),
                )
            out.extend(by_sub[s] for s in sorted(by_sub))
    except (ClientError, BotoCoreError) as exc:  # trimmed, or the stream is gone
        logger.info("cannot read %s from the stream: %s", batch.range, exc)
    return out


# --- both --------------------------------------------------------------------------------------


def recover(
    batch: FailedBatch,
    *,
    s3: Any,
    archive_bucket: str,
    archive_prefix: str,
    kinesis: Any | None = None,
    codec: Codec | None = None,
) -> RecoveredBatch:
    """The batch's records: from the archive, and from the stream for what it does not hold.

    ``missing`` counts the Kinesis records of the batch (when the message says how many)
    found in neither.
    """
    records = archived_records(s3, archive_bucket, archive_prefix, batch)
    sequences = {r.sequence_number for r in records}
    complete = batch.batch_size is not None and len(sequences) >= batch.batch_size
    if kinesis is not None and not complete:
        extra = [
            r for r in stream_records(kinesis, batch, codec) if r.sequence_number not in sequences
        ]
        if extra:
            records = sorted(
                [*records, *extra], key=lambda r: (int(r.sequence_number), r.sub_sequence_number)
            )
            sequences |= {r.sequence_number for r in extra}
    missing = max(0, batch.batch_size - len(sequences)) if batch.batch_size is not None else 0
    return RecoveredBatch(batch, records, missing)
