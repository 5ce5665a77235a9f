"""The lake writer: a Lambda batch in, Iceberg commits out.

The tables live in a SQLite Iceberg catalog with a file:// warehouse: the same pyiceberg
commit path as on Glue and S3 (tests/integration/test_lake_writer.py runs it against the
emulator).
"""

from __future__ import annotations

import copy
import io
import uuid
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import fastavro
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.consumers.batch import Batch, BatchRecord, KinesisBatchKernel
from pipelines.consumers.lake import (
    IcebergCommitter,
    LakeCatalog,
    LakeTables,
    LakeWriter,
    table_name,
    watermark_of,
)
from pipelines.consumers.metrics import KERNEL_METRICS, BatchCounts
from pipelines.contract.codec import MAGIC, DecodedEvent, decode_event, encode_event
from pipelines.contract.schemas import EVENT_TYPES, default_registry
from pipelines.errors import (
    InvalidEventError,
    MisconfigurationError,
    PoisonRecordError,
    TransientError,
)
from pipelines.event_time import EVENT_TIME_FLOOR
from pipelines.stream.records import DecodedRecord, Delivered, UserRecord
from pipelines_local.simulator import simulate
from tests.kinesis_events import (
    SHARD_ID,
    aggregated_record,
    kinesis_record,
    plain_records,
    sequence_number,
)
from tests.lake import local_lake

LAKE = "lake"


class KeptRecords:
    """A quarantine that remembers what it was given."""

    def __init__(self) -> None:
        self.kept: list[tuple[UserRecord, PoisonRecordError]] = []

    def keep(self, record: UserRecord, error: PoisonRecordError) -> str:
        self.kept.append((record, error))
        return f"lake-writer/{record.sequence_number}-{record.sub_sequence_number}.avro"


def sample_events(n: int = 120, seed: int = 7) -> list[dict[str, Any]]:
    """Every event type, over three event dates."""
    return simulate(n, seed).events


def mixed_batch(events: list[dict[str, Any]], *, first: int = 1) -> list[dict[str, Any]]:
    """Half the events one per Kinesis record, the rest in KPL aggregates of ten."""
    half = len(events) // 2
    records = plain_records(events[:half], first=first)
    n = first + half
    for start in range(half, len(events), 10):
        records.append(aggregated_record(events[start : start + 10], n))
        n += 1
    return records


def local_writer(root: Path, quarantine: Any = None) -> tuple[KinesisBatchKernel, KeptRecords]:
    """The lake writer on the batch kernel, writing under ``root``."""
    kept = quarantine or KeptRecords()
    return KinesisBatchKernel(LakeWriter(local_lake(root)), kept), kept


def read_lake(root: Path, event_type: str) -> pa.Table:
    table = local_lake(root).table(event_type)
    if table.current_snapshot() is None:
        return table.schema().as_arrow().empty_table()
    return table.scan().to_arrow()


def test_every_event_lands_once_with_typed_columns(tmp_path: Path) -> None:
    events = sample_events()
    writer, _ = local_writer(tmp_path)

    result = writer.process_batch(mixed_batch(events))

    assert result.errors == [None] * len(result.errors)
    by_type: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        by_type.setdefault(event["metadata"]["event_type"], []).append(event)
    for event_type, expected in by_type.items():
        table = read_lake(tmp_path, event_type)
        ids = table.column("event_id").to_pylist()
        assert Counter(ids) == Counter(e["metadata"]["event_id"] for e in expected)
        assert table.schema.field("occurred_at").type == pa.timestamp("us", tz="UTC")  # Iceberg: us
        rows = {row["event_id"]: row for row in table.to_pylist()}
        for event in expected:
            row = rows[event["metadata"]["event_id"]]
            assert row["occurred_at"] == event["metadata"]["occurred_at"]
            assert row["dt"] == event["metadata"]["occurred_at"].strftime("%Y-%m-%d")
    transactions = read_lake(tmp_path, "TransactionRecorded")
    assert transactions.schema.field("amount").type == pa.decimal128(18, 4)
    amounts = dict(
        zip(
            transactions["transaction_id"].to_pylist(),
            transactions["amount"].to_pylist(),
            strict=True,
        )
    )
    for event in by_type["TransactionRecorded"]:
        assert amounts[event["transaction_id"]] == event["amount"]  # exact Decimal
    metrics = read_lake(tmp_path, "MetricRecorded")
    assert metrics.schema.field("tags").type == pa.map_(pa.string(), pa.string())
    tags = {r["event_id"]: dict(r["tags"]) for r in metrics.to_pylist()}
    assert all(tags[e["metadata"]["event_id"]] == e["tags"] for e in by_type["MetricRecorded"])
    images = read_lake(tmp_path, "ImageLabeled")
    assert pa.types.is_list(images.schema.field("labels").type)
    assert pa.types.is_struct(images.schema.field("labels").type.value_type)
    labels = {r["key"]: [x["name"] for x in r["labels"]] for r in images.to_pylist()}
    assert all(
        labels[e["key"]] == [x["name"] for x in e["labels"]] for e in by_type["ImageLabeled"]
    )


def test_each_commit_raises_the_shards_watermark_in_its_table(tmp_path: Path) -> None:
    batch = mixed_batch(sample_events(60))
    writer, _ = local_writer(tmp_path)

    result = writer.process_batch(batch)

    last = int(batch[-1]["kinesis"]["sequenceNumber"])
    commits = result.detail
    assert commits and {c.table.split(".")[1] for c in commits} <= {
        table_name(t) for t in EVENT_TYPES
    }
    lake = local_lake(tmp_path)
    for commit in commits:
        table = lake.catalog.load_table(commit.table)
        assert watermark_of(table, SHARD_ID) == last
        assert [f.name for f in table.spec().fields] == ["dt"]


def test_redelivered_batch_commits_nothing(tmp_path: Path) -> None:
    events = sample_events()
    batch = mixed_batch(events)
    writer, _ = local_writer(tmp_path)

    first = writer.process_batch(batch)
    again = writer.process_batch(batch)

    assert sum(c.appended for c in first.detail) == len(events)
    assert sum(c.appended for c in again.detail) == 0
    assert sum(c.already_committed for c in again.detail) == len(events)
    total = sum(
        read_lake(tmp_path, t).num_rows for t in {e["metadata"]["event_type"] for e in events}
    )
    assert total == len(events)


def test_a_longer_and_a_shorter_retry_each_commit_every_record_once(tmp_path: Path) -> None:
    events = sample_events(90)
    records = plain_records(events)
    writer, _ = local_writer(tmp_path)

    writer.process_batch(records[:30])  # committed; Lambda never heard (a crash)
    writer.process_batch(records[:60])  # the retry, after more records arrived: longer
    writer.process_batch(records[:45])  # a shorter one (the batch size was lowered)
    writer.process_batch(records[45:])

    ids = [
        i
        for t in {e["metadata"]["event_type"] for e in events}
        for i in read_lake(tmp_path, t)["event_id"].to_pylist()
    ]
    assert sorted(ids) == sorted(e["metadata"]["event_id"] for e in events)


def test_the_same_event_at_a_new_sequence_number_is_dropped(tmp_path: Path) -> None:
    events = sample_events(40)
    writer, _ = local_writer(tmp_path)
    writer.process_batch(plain_records(events))

    again = writer.process_batch(plain_records(events[::3], first=500))

    assert sum(c.duplicates for c in again.detail) == len(events[::3])
    assert again.counts["LakeDuplicatesDropped"] == len(events[::3])
    ids = [
        i
        for t in {e["metadata"]["event_type"] for e in events}
        for i in read_lake(tmp_path, t)["event_id"].to_pylist()
    ]
    assert sorted(ids) == sorted(e["metadata"]["event_id"] for e in events)


def test_an_event_delivered_twice_in_a_batch_is_written_once(tmp_path: Path) -> None:
    events = sample_events(20)
    batch = plain_records(events) + plain_records(events[:5], first=len(events) + 1)
    writer, _ = local_writer(tmp_path)

    result = writer.process_batch(batch)

    assert result.counts["EventsSkippedDuplicate"] == 5
    ids = [
        i
        for t in {e["metadata"]["event_type"] for e in events}
        for i in read_lake(tmp_path, t)["event_id"].to_pylist()
    ]
    assert sorted(ids) == sorted(e["metadata"]["event_id"] for e in events)


def test_poison_records_are_quarantined_and_the_batch_goes_on(tmp_path: Path) -> None:
    events = sample_events(20)
    good = plain_records(events)
    garbage = kinesis_record(b"not an event", "pk-poison", 50)
    unknown = kinesis_record(b"\xc3\x01" + b"\x00" * 8 + b"body", "pk-unknown", 51)
    broken = kinesis_record(encode_event(events[0])[:-3], "pk-truncated", 52)
    writer, kept = local_writer(tmp_path)

    result = writer.process_batch([*good[:10], garbage, unknown, *good[10:], broken])

    assert result.errors == [None] * (len(good) + 3)
    assert sorted(r.partition_key for r, _ in kept.kept) == [
        "pk-poison",
        "pk-truncated",
        "pk-unknown",
    ]
    assert {e.code for _, e in kept.kept} == {"corrupt_record", "unknown_schema"}
    assert result.counts["EventsQuarantined"] == 3
    written = sum(
        read_lake(tmp_path, t).num_rows for t in {e["metadata"]["event_type"] for e in events}
    )
    assert written == len(events)


class FailingQuarantine(KeptRecords):
    def keep(self, record: UserRecord, error: PoisonRecordError) -> str:
        raise TransientError("quarantine bucket unavailable")


def test_a_failed_write_fails_every_record_so_the_whole_batch_is_redelivered(
    tmp_path: Path,
) -> None:
    batch = [*plain_records(sample_events(10)), kinesis_record(b"junk", "pk", 40)]
    writer, _ = local_writer(tmp_path, FailingQuarantine())

    result = writer.process_batch(batch)

    assert all(isinstance(error, TransientError) for error in result.errors)
    assert len(result.errors) == len(batch)
    assert result.counts["RecordsFailed"] == len(batch)


def test_event_date_partitions_follow_utc_event_time(tmp_path: Path) -> None:
    event = sample_events(20)[0]
    late = {
        **event,
        "metadata": {
            **event["metadata"],
            "occurred_at": datetime(2026, 11, 1, 23, 59, 59, 999000, tzinfo=UTC),
        },
    }
    writer, _ = local_writer(tmp_path)

    writer.process_batch(plain_records([late]))

    table = read_lake(tmp_path, late["metadata"]["event_type"])
    assert table["dt"].to_pylist() == ["2026-11-01"]
    assert table["occurred_at"].to_pylist() == [late["metadata"]["occurred_at"]]


def test_tables_write_zstd_parquet(tmp_path: Path) -> None:
    writer, _ = local_writer(tmp_path)
    writer.process_batch(plain_records(sample_events(20)))

    (path,) = list((tmp_path / LAKE / "transaction_recorded" / "data").rglob("*.parquet"))[:1]
    meta = pq.ParquetFile(path).metadata
    assert meta.row_group(0).column(0).compression.lower() == "zstd"


# --- a row the lake cannot hold is that row's problem, never the batch's ------------------------

WIDE_AMOUNT = Decimal("123456789012345678901234.5")  # 24 integer digits: decimal(18,4) holds 14


def too_wide_transaction(event: dict[str, Any] | None = None) -> dict[str, Any]:
    """A TransactionRecorded whose amount is wider than its decimal(18,4) column."""
    base = event or next(
        e for e in sample_events(50) if e["metadata"]["event_type"] == "TransactionRecorded"
    )
    return {
        **base,
        "metadata": {**base["metadata"], "event_id": str(uuid.uuid4())},
        "amount": WIDE_AMOUNT,
    }


def unchecked_bytes(event: dict[str, Any]) -> bytes:
    """The event's wire bytes, written past the encoder's checks.

    The encoder (and fastavro) refuse a decimal wider than its precision; the wire format of
    a decimal does not carry the precision, so the body is written with a wider one, under the
    real schema's fingerprint, as a producer that checks nothing would.
    """
    version = default_registry().current[event["metadata"]["event_type"]]
    schema = copy.deepcopy(version.resolved)
    for field in schema["fields"]:
        if isinstance(field["type"], dict) and field["type"].get("logicalType") == "decimal":
            field["type"] = {**field["type"], "precision": 38}
    body = io.BytesIO()
    fastavro.schemaless_writer(body, fastavro.parse_schema(schema), event)
    return MAGIC + version.fingerprint + body.getvalue()


def hand_built_batch(kernel: KinesisBatchKernel, items: list[tuple[bytes, DecodedEvent]]) -> Batch:
    """A batch of one event per Kinesis record, decoded by hand (not by the decode path).

    The decode path refuses values its contract forbids; the lake writer must not depend on
    that, so its own isolation is tested on events that reached it anyway.
    """
    records = []
    for n, (data, event) in enumerate(items):
        seq = sequence_number(n + 1)
        key = event.record["metadata"]["aggregate_id"]
        delivered = Delivered(0, data, event)
        decoded = DecodedRecord(seq, SHARD_ID, key, 1_793_487_000.0 + n, False, [delivered], [])
        records.append(BatchRecord(n, seq, frozenset({key}), decoded, [delivered]))
    names = (*kernel.consumer.metric_names, *KERNEL_METRICS)
    return Batch(records, BatchCounts(names), kernel)


def decoded_with_wide_amount(good: dict[str, Any]) -> tuple[bytes, DecodedEvent]:
    """A too-wide transaction as the codec reads it (fastavro rounds it to 18 digits)."""
    data = unchecked_bytes(too_wide_transaction(good))
    return data, decode_event(data)


def lake_rows(root: Path) -> Counter[str]:
    """Event id -> rows in the lake, over every table written."""
    rows: Counter[str] = Counter()
    for event_type in EVENT_TYPES:
        rows.update(read_lake(root, event_type)["event_id"].to_pylist())
    return rows


def test_a_decimal_wider_than_its_column_is_quarantined_alone_and_the_rest_is_written(
    tmp_path: Path,
) -> None:
    events = sample_events(600)
    good = [(encode_event(e), decode_event(encode_event(e))) for e in events]
    transaction = next(e for e in events if e["metadata"]["event_type"] == "TransactionRecorded")
    bad_data, bad = decoded_with_wide_amount(transaction)
    writer, kept = local_writer(tmp_path)
    batch = hand_built_batch(writer, [*good[:300], (bad_data, bad), *good[300:]])

    written = writer.consumer.consume(batch)

    assert [r.error for r in batch.records] == [None] * 601
    assert written
    assert lake_rows(tmp_path) == Counter(e["metadata"]["event_id"] for e in events)
    ((record, error),) = kept.kept
    assert record.data == bad_data and record.sequence_number == sequence_number(301)
    assert isinstance(error, InvalidEventError)
    assert "transaction_recorded" in error.reason and "ArrowInvalid" in error.reason
    assert batch.counts["EventsWrittenToLake"] == 600
    assert batch.counts["EventsQuarantined"] == 1


def test_through_the_kernel_the_too_wide_decimal_is_quarantined_once_and_nothing_fails(
    tmp_path: Path,
) -> None:
    events = sample_events(600)
    bad = too_wide_transaction()
    records = [*plain_records(events[:300]), kinesis_record(unchecked_bytes(bad), "pk", 301)]
    records += plain_records(events[300:], first=302)
    writer, kept = local_writer(tmp_path)

    result = writer.process_batch(records)

    assert result.errors == [None] * 601
    assert lake_rows(tmp_path) == Counter(e["metadata"]["event_id"] for e in events)
    assert [(r.data, bool(e.reason)) for r, e in kept.kept] == [(unchecked_bytes(bad), True)]
    assert result.counts["EventsQuarantined"] == 1


def test_lake_tables_set_aside_only_the_rows_that_cannot_be_converted() -> None:
    events = [decode_event(encode_event(e)) for e in sample_events(200)]
    transaction = next(
        e for e in sample_events(200) if e["metadata"]["event_type"] == "TransactionRecorded"
    )
    _, bad = decoded_with_wide_amount(transaction)
    early = events[0]._replace(
        record={
            **events[0].record,
            "metadata": {
                **events[0].record["metadata"],
                "occurred_at": datetime(2023, 12, 31, 23, 59, 59, 999000, tzinfo=UTC),
            },
        }
    )
    floor = events[1]._replace(
        record={
            **events[1].record,
            "metadata": {**events[1].record["metadata"], "occurred_at": EVENT_TIME_FLOOR},
        }
    )
    given = [early, floor, *events[2:100], bad, *events[100:]]

    built = LakeTables().build(given)

    assert [r.position for r in built.rejected] == [0, 100]
    assert "before 2024-01-01" in built.rejected[0].reason
    assert "does not fit the lake table transaction_recorded" in built.rejected[1].reason
    assert sum(len(r.positions) for r in built.rows) == len(given) - 2
    days = [d for r in built.rows for d in r.table["dt"].to_pylist()]
    assert days.count("2024-01-01") == 1  # the floor itself is the first partition


def test_an_event_dated_before_the_lakes_first_partition_is_quarantined(tmp_path: Path) -> None:
    events = sample_events(20)
    early = {
        **events[0],
        "metadata": {**events[0]["metadata"], "occurred_at": datetime(2023, 6, 1, tzinfo=UTC)},
    }
    writer, kept = local_writer(tmp_path)

    result = writer.process_batch(plain_records([*events[1:], early]))

    assert result.errors == [None] * 20
    assert [r.data for r, _ in kept.kept] == [encode_event(early)]
    assert lake_rows(tmp_path) == Counter(e["metadata"]["event_id"] for e in events[1:])


def test_when_the_lakes_poison_cannot_be_quarantined_the_whole_batch_fails_and_a_retry_repairs_it(
    tmp_path: Path,
) -> None:
    events = sample_events(40)
    good = [(encode_event(e), decode_event(encode_event(e))) for e in events]
    transaction = next(e for e in events if e["metadata"]["event_type"] == "TransactionRecorded")
    items = [*good[:20], decoded_with_wide_amount(transaction), *good[20:]]
    failing, _ = local_writer(tmp_path, FailingQuarantine())
    batch = hand_built_batch(failing, items)

    failing.consumer.consume(batch)

    assert all(isinstance(r.error, TransientError) for r in batch.records)
    assert not lake_rows(tmp_path)  # nothing written: the retry writes it all
    working, kept = local_writer(tmp_path)
    again = hand_built_batch(working, items)
    working.consumer.consume(again)
    assert [r.error for r in again.records] == [None] * len(items)
    assert len(kept.kept) == 1
    assert lake_rows(tmp_path) == Counter(e["metadata"]["event_id"] for e in events)


class BrokenCommitter(IcebergCommitter):
    def __init__(self, lake: LakeCatalog, error: Exception) -> None:
        super().__init__(lake)
        self.error = error

    def commit(self, *args: Any, **kwargs: Any) -> Any:
        raise self.error


def test_a_transient_write_failure_fails_the_whole_batch(tmp_path: Path) -> None:
    batch = plain_records(sample_events(20))
    lake = local_lake(tmp_path)
    kernel = KinesisBatchKernel(
        LakeWriter(lake, BrokenCommitter(lake, TransientError("SlowDown"))), KeptRecords()
    )

    result = kernel.process_batch(batch)

    assert all(isinstance(error, TransientError) for error in result.errors)


def test_a_misconfigured_lake_fails_the_invocation_loudly(tmp_path: Path) -> None:
    lake = local_lake(tmp_path)
    kernel = KinesisBatchKernel(
        LakeWriter(lake, BrokenCommitter(lake, MisconfigurationError("AccessDenied"))),
        KeptRecords(),
    )

    with pytest.raises(MisconfigurationError):
        kernel.process_batch(plain_records(sample_events(20)))
