"""Compaction of the lake's closed partitions, snapshot expiry and orphan-file removal.

The tables live in a SQLite catalog over a ``file://`` warehouse: the same pyiceberg code
paths as Glue over S3, with commits that race for real (the catalog's compare-and-swap of
the metadata location).
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.table import Table

from pipelines.adapters.stored_files import LocalFiles, normalized_uri
from pipelines.consumers.lake import IcebergCommitter, LakeCatalog, LakeTables, watermark_of
from pipelines.consumers.lake.compaction import (
    COMPACTED_PARTITION,
    Compactor,
    first_copies,
    partition_files,
)
from pipelines.consumers.lake.maintenance import UnknownLakeTableError, table_identifiers
from pipelines.consumers.lake.retention import Retention, referenced_files
from pipelines_local.simulator import simulate

TYPE = "TransactionRecorded"
SHARD = "shardId-000000000000"
START = datetime(2026, 11, 1, tzinfo=UTC)  # the simulator's events span Nov 1-3
CLOSED = ("2026-11-01", "2026-11-02")
OPEN = "2026-11-03"
TODAY = datetime(2026, 11, 3, 12, tzinfo=UTC)


def catalog_at(root: Path) -> SqlCatalog:
    catalog = SqlCatalog(
        "unit", uri=f"sqlite:///{root / 'catalog.db'}", warehouse=f"file://{root / 'lake'}"
    )
    catalog.create_namespace_if_not_exists("lake")
    return catalog


def local_lake(root: Path) -> LakeCatalog:
    (root / "lake").mkdir(parents=True, exist_ok=True)
    return LakeCatalog(
        catalog_at(root), "lake", "lake", LakeTables(), warehouse=f"file://{root / 'lake'}"
    )


def transactions(n: int = 600, seed: int = 11) -> list[dict[str, Any]]:
    events = simulate(n, seed, start=START).events
    return [e for e in events if e["metadata"]["event_type"] == TYPE]


class Writer:
    """Commits events the way the lake writer does: batch by batch, one shard's sequence."""

    def __init__(self, lake: LakeCatalog) -> None:
        self.lake = lake
        self.committer = IcebergCommitter(lake)
        self.sequence = 0

    def commit(self, events: list[dict[str, Any]], batch: int = 12) -> None:
        for start in range(0, len(events), batch):
            rows = self.lake.tables.rows(TYPE, events[start : start + batch])
            sequences = list(range(self.sequence + 1, self.sequence + 1 + len(rows)))
            self.sequence = sequences[-1]
            self.committer.commit(TYPE, rows, sequences, SHARD, self.sequence)


@pytest.fixture
def lake(tmp_path: Path) -> LakeCatalog:
    return local_lake(tmp_path)


@pytest.fixture
def events() -> list[dict[str, Any]]:
    return transactions()


@pytest.fixture
def table(lake: LakeCatalog, events: list[dict[str, Any]]) -> Table:
    """The transactions table, written in batches of ten: many small files a day."""
    Writer(lake).commit(events)
    return lake.table(TYPE)


def compactor(lake: LakeCatalog, **kwargs: Any) -> Compactor:
    kwargs.setdefault("clock", lambda: TODAY)
    kwargs.setdefault("sleep", lambda _: None)
    return Compactor(lake.catalog, files=lambda _: LocalFiles(), **kwargs)


def identifier(lake: LakeCatalog) -> tuple[str, str]:
    return lake.identifier(TYPE)


def rows_by_day(table: Table) -> Counter[str]:
    return Counter(table.scan(selected_fields=("dt",)).to_arrow()["dt"].to_pylist())


def event_ids(table: Table) -> Counter[str]:
    return Counter(table.scan(selected_fields=("event_id",)).to_arrow()["event_id"].to_pylist())


def expected_by_day(events: list[dict[str, Any]]) -> Counter[str]:
    return Counter(e["metadata"]["occurred_at"].strftime("%Y-%m-%d") for e in events)


# --- compaction ----------------------------------------------------------------------------


def test_closed_partitions_become_one_file_each_with_every_row(
    lake: LakeCatalog, table: Table, events: list[dict[str, Any]]
) -> None:
    before = partition_files(table)
    assert all(before[dt].files >= 3 for dt in CLOSED)

    report = compactor(lake).run(identifier(lake))

    table = lake.table(TYPE)
    after = partition_files(table)
    assert [p.dt for p in report.partitions] == list(CLOSED)
    for partition in report.partitions:
        assert partition.files_before == before[partition.dt].files
        assert partition.files_after == after[partition.dt].files == 1
        assert partition.rows_before == partition.rows_after == before[partition.dt].rows
        assert partition.duplicates_removed == 0
        assert partition.attempts == 1
    assert rows_by_day(table) == expected_by_day(events)
    assert event_ids(table) == Counter(e["metadata"]["event_id"] for e in events)
    # Values come back exactly (decimals included).
    amounts = dict(
        zip(
            *table.scan().to_arrow().select(["event_id", "amount"]).to_pydict().values(),
            strict=True,
        )
    )
    assert all(amounts[e["metadata"]["event_id"]] == e["amount"] for e in events)


def test_the_open_partition_is_left_alone(lake: LakeCatalog, table: Table) -> None:
    open_files = set(partition_files(table)[OPEN].sequence_numbers)
    assert len(open_files) > 1

    compactor(lake).run(identifier(lake))  # the clock says today is OPEN

    assert set(partition_files(lake.table(TYPE))[OPEN].sequence_numbers) == open_files


def test_before_moves_the_cutoff(lake: LakeCatalog, table: Table) -> None:
    report = compactor(lake).run(identifier(lake), before=date(2026, 11, 2), expire=False)

    assert [p.dt for p in report.partitions] == ["2026-11-01"]
    assert partition_files(lake.table(TYPE))["2026-11-02"].files > 1


def test_a_compacted_partition_is_not_rewritten_again(lake: LakeCatalog, table: Table) -> None:
    compactor(lake).run(identifier(lake))
    snapshot = lake.table(TYPE).current_snapshot()

    again = compactor(lake).run(identifier(lake))

    assert again.partitions == ()
    assert lake.table(TYPE).current_snapshot() == snapshot


def test_a_duplicate_in_a_closed_partition_is_removed_keeping_the_first_committed_copy(
    lake: LakeCatalog, table: Table, events: list[dict[str, Any]]
) -> None:
    # Two later copies of one event, same id and day, different content, appended behind
    # the writer's back (the writer itself never lets a copy into a partition that has one).
    original = next(e for e in events if e["metadata"]["occurred_at"].day == 1)
    copies = []
    for amount in ("1.0000", "2.0000"):
        copy = {**original, "amount": Decimal(amount)}
        copies.append(lake.tables.rows(TYPE, [copy]))
    table.append(pa.concat_tables(copies))
    assert event_ids(lake.table(TYPE))[original["metadata"]["event_id"]] == 3

    report = compactor(lake).run(identifier(lake))

    table = lake.table(TYPE)
    (first_day,) = [p for p in report.partitions if p.dt == "2026-11-01"]
    assert first_day.duplicates_removed == 2
    assert first_day.rows_after == first_day.rows_before - 2
    assert event_ids(table) == Counter(e["metadata"]["event_id"] for e in events)
    kept = table.scan(row_filter=f"event_id == '{original['metadata']['event_id']}'").to_arrow()
    assert kept["amount"].to_pylist() == [original["amount"]]


def test_first_copies_keeps_the_earliest_row_of_each_id_in_order() -> None:
    rows = pa.table({"event_id": ["a", "b", "a", "c", "b", "a"], "n": [1, 2, 3, 4, 5, 6]})

    kept = first_copies(rows)

    assert kept.to_pydict() == {"event_id": ["a", "b", "c"], "n": [1, 2, 4]}
    unique = pa.table({"event_id": ["x", "y"], "n": [1, 2]})
    assert first_copies(unique) is unique


def test_watermarks_and_every_other_property_survive(lake: LakeCatalog, table: Table) -> None:
    properties = dict(table.properties)
    assert watermark_of(table, SHARD) > 0

    compactor(lake).run(identifier(lake))

    assert dict(lake.table(TYPE).properties) == properties


def test_a_watermark_raised_during_compaction_survives_it(lake: LakeCatalog, table: Table) -> None:
    raised: list[str] = []

    def another_shard_commits(current: Table, dt: str) -> None:
        if not raised:  # a batch of another shard whose events were all in already
            other = lake.catalog.load_table(identifier(lake))
            with other.transaction() as tx:
                tx.set_properties({"pipelines.watermark.shardId-000000000001": "42"})
            raised.append(dt)

    report = compactor(lake, before_commit=another_shard_commits).run(identifier(lake))

    table = lake.table(TYPE)
    assert table.properties["pipelines.watermark.shardId-000000000001"] == "42"
    assert watermark_of(table, SHARD) > 0
    assert all(p.attempts == 1 for p in report.partitions)  # no data changed: no conflict


@pytest.mark.parametrize("pyiceberg_retries", ["0", "2"])
def test_a_commit_into_the_partition_during_compaction_is_redone_and_loses_nothing(
    lake: LakeCatalog, table: Table, events: list[dict[str, Any]], pyiceberg_retries: str
) -> None:
    # With pyiceberg's retries off (the lake's setting) the catalog rejects the stale branch;
    # with them on, pyiceberg's validation finds the appended file. Redone either way.
    with table.transaction() as tx:
        tx.set_properties({"commit.retry.num-retries": pyiceberg_retries})
    late = [
        {**e, "metadata": {**e["metadata"], "event_id": f"late-{i}"}}
        for i, e in enumerate(x for x in events if x["metadata"]["occurred_at"].day == 1)
    ][:5]
    writer = Writer(lake)
    writer.sequence = 10_000
    interrupted: list[str] = []

    def a_late_batch_lands(current: Table, dt: str) -> None:
        if dt == "2026-11-01" and not interrupted:
            writer.commit(late, batch=5)
            interrupted.append(dt)

    report = compactor(lake, before_commit=a_late_batch_lands).run(identifier(lake))

    (first_day,) = [p for p in report.partitions if p.dt == "2026-11-01"]
    assert first_day.attempts == 2
    assert first_day.files_after == 1
    table = lake.table(TYPE)
    assert event_ids(table) == Counter(e["metadata"]["event_id"] for e in [*events, *late])
    assert rows_by_day(table) == expected_by_day([*events, *late])


def test_a_reader_counting_during_compaction_sees_every_event_exactly_once(
    lake: LakeCatalog, table: Table, events: list[dict[str, Any]], tmp_path: Path
) -> None:
    total = len(events)
    seen: list[tuple[int | None, int]] = []
    reads = threading.Semaphore(0)
    done = threading.Event()
    errors: list[BaseException] = []

    def count_continuously() -> None:
        reader = catalog_at(tmp_path)  # its own catalog connection, as another process has
        try:
            while not done.is_set():
                current = reader.load_table(identifier(lake))
                snapshot = current.current_snapshot()
                ids = current.scan(selected_fields=("event_id",)).to_arrow()["event_id"]
                seen.append((snapshot.snapshot_id if snapshot else None, len(ids)))
                assert pc.count_distinct(ids).as_py() == len(ids)
                reads.release()
        except BaseException as exc:
            errors.append(exc)
            reads.release()

    def wait_for_a_read(current: Table, dt: str) -> None:
        assert reads.acquire(timeout=30)  # a read of the snapshot about to be replaced

    thread = threading.Thread(target=count_continuously)
    thread.start()
    try:
        report = compactor(lake, before_commit=wait_for_a_read).run(identifier(lake))
        assert reads.acquire(timeout=30)
        assert reads.acquire(timeout=30)  # and a read that began after the last commit
    finally:
        done.set()
        thread.join(timeout=30)

    assert not errors, errors
    assert len(report.partitions) == len(CLOSED)
    assert {count for _, count in seen} == {total}
    assert len({snapshot for snapshot, _ in seen}) >= len(CLOSED) + 1


def test_compaction_snapshots_name_the_partition_they_rewrote(
    lake: LakeCatalog, table: Table
) -> None:
    compactor(lake).run(identifier(lake))

    rewritten = {
        s.summary[COMPACTED_PARTITION]
        for s in lake.table(TYPE).snapshots()
        if s.summary is not None and COMPACTED_PARTITION in s.summary.additional_properties
    }
    assert rewritten == set(CLOSED)


# --- retention -----------------------------------------------------------------------------


def _files_of(root: Path) -> set[str]:
    return {normalized_uri(f"file://{p}") for p in (root / "lake").rglob("*") if p.is_file()}


def _plant(path: Path, age: timedelta, now: datetime) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not referenced by anything")
    stamp = (now - age).timestamp()
    os.utime(path, (stamp, stamp))
    return path


def test_expiry_then_orphan_removal_deletes_only_what_nothing_refers_to(
    lake: LakeCatalog, table: Table, events: list[dict[str, Any]], tmp_path: Path
) -> None:
    replaced = {path for dt in CLOSED for path in partition_files(table)[dt].sequence_numbers}
    compactor(lake).run(identifier(lake), expire=False)
    later = datetime.now(UTC) + timedelta(days=30)  # every snapshot and file is old by then
    location = Path(table.location().removeprefix("file://"))
    now = datetime.now(UTC)
    orphan = _plant(location / "data" / "dt=2026-11-01" / "lost.parquet", timedelta(0), now)
    outside = _plant(location / "notes" / "readme.txt", timedelta(0), now)

    report = compactor(lake, clock=lambda: later, retention=Retention(snapshots_kept=3)).run(
        identifier(lake)
    )

    table = lake.table(TYPE)
    assert len(table.snapshots()) == 3
    assert report.snapshots_expired > 0
    referenced = referenced_files(table)
    left = _files_of(tmp_path)
    assert referenced <= left  # every file the table refers to is still there
    assert normalized_uri(f"file://{orphan}") not in left
    assert {normalized_uri(p) for p in replaced}.isdisjoint(left)  # the small files went
    assert outside.exists()  # outside the table's data and metadata folders
    assert report.orphans.files > len(replaced)  # and the expired snapshots' manifests
    assert rows_by_day(table) == expected_by_day(events)  # and it still reads whole
    assert event_ids(table) == Counter(e["metadata"]["event_id"] for e in events)


def test_a_young_unreferenced_file_is_kept_and_an_old_one_deleted(
    lake: LakeCatalog, table: Table
) -> None:
    now = datetime.now(UTC)
    location = Path(table.location().removeprefix("file://"))
    young = _plant(
        location / "data" / "dt=2026-11-02" / "in-flight.parquet", timedelta(hours=2), now
    )
    old = _plant(location / "metadata" / "abandoned-m0.avro", timedelta(days=4), now)

    report = compactor(lake, clock=lambda: now).run(identifier(lake))

    assert young.exists()
    assert not old.exists()
    assert report.orphans.files == 1
    assert report.orphans.bytes == len(b"not referenced by anything")
    assert table.metadata_location  # and the table's own files were all young


def test_metadata_files_of_the_log_are_never_deleted(lake: LakeCatalog, table: Table) -> None:
    later = datetime.now(UTC) + timedelta(days=30)

    compactor(lake, clock=lambda: later, retention=Retention(snapshots_kept=1)).run(
        identifier(lake)
    )

    table = lake.table(TYPE)
    logged = [table.metadata_location, *(e.metadata_file for e in table.metadata.metadata_log)]
    assert len(logged) > 10
    assert all(Path(uri.removeprefix("file://")).is_file() for uri in logged)


def test_time_travel_to_an_expired_snapshot_fails(lake: LakeCatalog, table: Table) -> None:
    first = table.snapshots()[0].snapshot_id
    assert len(table.scan(snapshot_id=first).to_arrow()) > 0
    later = datetime.now(UTC) + timedelta(days=30)

    compactor(lake, clock=lambda: later, retention=Retention(snapshots_kept=2)).run(
        identifier(lake)
    )

    table = lake.table(TYPE)
    assert table.snapshot_by_id(first) is None
    with pytest.raises(ValueError, match="Snapshot not found"):
        table.scan(snapshot_id=first).to_arrow()


def test_snapshots_younger_than_the_retention_are_kept(lake: LakeCatalog, table: Table) -> None:
    snapshots = len(table.snapshots())

    report = compactor(lake, clock=lambda: datetime.now(UTC)).run(
        identifier(lake), before=TODAY.date()
    )

    assert report.snapshots_expired == 0
    assert len(lake.table(TYPE).snapshots()) == snapshots + 2 * len(CLOSED)


@pytest.mark.parametrize(
    "change",
    [{"snapshots_kept": 0}, {"orphan_age": timedelta(minutes=5)}, {"snapshot_age": timedelta(-1)}],
)
def test_a_retention_that_could_lose_data_is_refused(change: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        Retention(**change)


# --- the lake's tables ---------------------------------------------------------------------


def test_tables_are_named_by_table_name_or_event_type(lake: LakeCatalog) -> None:
    assert table_identifiers(lake, ["transaction_recorded", "MetricRecorded"]) == [
        ("lake", "metric_recorded"),
        ("lake", "transaction_recorded"),
    ]
    assert len(table_identifiers(lake)) == len(lake.tables.event_types)
    with pytest.raises(UnknownLakeTableError, match="no lake table nope"):
        table_identifiers(lake, ["nope"])
