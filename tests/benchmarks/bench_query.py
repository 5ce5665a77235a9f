"""Lake query figures: bytes a query reads from the Parquet lake vs the same events as JSON lines.

Target (issue "Lake query"): the daily analytics query reads <= 3% of the bytes
it would read over JSON lines, measured with DuckDB's profiling.

100,000 simulated events, starting two days ago at 00:00 UTC so that the
query's 7-day window holds all of them, are written to a temporary directory on
local disk twice, in the same Hive layout (``<table>/[data/]dt=<yyyy-MM-dd>/...``):

* the lake: the lake's Iceberg tables in a local catalog, committed 5,000 events at a
  time as the lake writer commits them: a zstd Parquet data file per commit, event type
  and event date (Iceberg's data files are the ones a scan reads; its metadata is not
  counted);
* JSON lines: one ``.jsonl`` file per event type and event date, each line
  :func:`event_to_json` with compact separators.

DuckDB reads the Parquet files directly (``read_parquet``) and the JSON lines
with ``read_json`` (its columns typed from ``read_json_auto`` beforehand, as
auto-detection would read every file a second time), both with ``dt`` a string
partition as Glue declares it; a view over the JSON lines lifts the ``metadata``
fields to top-level columns, as the lake stores them. Each query is the same
Athena SQL transpiled to DuckDB with :func:`to_duckdb_sql`, as the local engine
runs it. Bytes read are DuckDB's own I/O counter, ``io.total_bytes_read`` of the
JSON profile, taken on a fresh connection with the external file cache off, so
every byte counted came from the file system. Parquet is measured twice: with
DuckDB's defaults, whose prefetching coalesces nearby column chunks (reading the
unneeded columns between them), and with prefetching off, reading only the
column chunks the query needs plus the footers. As a check on that counter, the
Parquet query is run again over a pyarrow dataset of the same files behind a
filesystem that counts the bytes its files hand out (as the local engine reads
the lake), and that count is printed too.
"""

from __future__ import annotations

import json
import math
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs

from pipelines.consumers.lake import LakeTables
from pipelines.consumers.lake.iceberg import PARTITION_COLUMN
from pipelines.contract.codec import Codec, DecodedEvent
from pipelines.contract.events import event_to_json
from pipelines_local.catalog import table_name
from pipelines_local.query import named_query, to_duckdb_sql
from pipelines_local.simulator import simulate
from tests.benchmarks.timing import median_cpu, pin_one_core
from tests.lake import LAKE, commit_events, local_lake

N_EVENTS = 100_000
BATCH = 5_000
SHARE_TARGET = 0.03
RUNS = 3
TARGET_TABLE = "user_activity_recorded"  # the target is the daily analytics query's

# label -> (the table it reads, its Athena SQL)
# Parquet read as DuckDB does by default (prefetching coalesces nearby column chunks, so
# bytes of unneeded columns between needed ones are read too), and reading only the
# column chunks the query needs.
PARQUET_READS: dict[str, tuple[str, ...]] = {
    "DuckDB defaults (prefetch)": (),
    "needed column chunks only (disable_parquet_prefetching)": (
        "SET disable_parquet_prefetching = true",
    ),
}

QUERIES: dict[str, tuple[str, str]] = {
    "daily analytics": ("user_activity_recorded", named_query("daily_analytics")),
    "transaction count": (
        "transaction_recorded",
        "SELECT count(*), count(DISTINCT event_id) FROM transaction_recorded",
    ),
}


def _connect() -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect(":memory:")
    connection.execute("SET TimeZone = 'UTC'")
    # Every read must reach the file system to be counted, the first run like the last.
    connection.execute("SET enable_external_file_cache = false")
    connection.execute("SET parquet_metadata_cache = false")
    return connection


def _parquet_view(connection: duckdb.DuckDBPyConnection, root: Path, table: str) -> None:
    files = str(root / table / "data" / "*" / "*.parquet")
    connection.execute(
        f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{files}', "
        f"hive_partitioning = true, hive_types = {{'{PARTITION_COLUMN}': 'VARCHAR'}})"
    )


def _json_view(connection: duckdb.DuckDBPyConnection, root: Path, table: str) -> None:
    """The JSON lines as a table, columns typed up front so the query reads each file once.

    ``read_json_auto`` reads every file a second time to detect the schema; here the
    schema is detected beforehand (not profiled) and given to ``read_json``.
    """
    files = str(root / table / "*" / "*.jsonl")
    hive = f"hive_partitioning = true, hive_types = {{'{PARTITION_COLUMN}': 'VARCHAR'}}"
    detected = connection.execute(
        f"DESCRIBE SELECT * FROM read_json_auto('{files}', format = 'newline_delimited', "
        f"union_by_name = true, {hive})"
    ).fetchall()
    columns = ", ".join(
        f"'{name}': '{kind}'" for name, kind, *_ in detected if name != PARTITION_COLUMN
    )
    connection.execute(
        f"CREATE VIEW {table} AS SELECT metadata.*, * EXCLUDE (metadata) FROM read_json("
        f"'{files}', format = 'newline_delimited', auto_detect = false, "
        f"columns = {{{columns}}}, {hive})"
    )


class _CountingHandler(pafs.FileSystemHandler):
    """A local filesystem that counts the bytes its opened files return."""

    def __init__(self) -> None:
        self.local = pafs.LocalFileSystem()
        self.bytes_read = 0

    def _counting(self, stream: Any) -> Any:
        handler = self
        read, read_at = stream.read, stream.read_at

        def counted_read(nbytes: int | None = None) -> bytes:
            data = read(nbytes)
            handler.bytes_read += len(data)
            return data

        def counted_read_at(nbytes: int, offset: int) -> bytes:
            data = read_at(nbytes, offset)
            handler.bytes_read += len(data)
            return data

        return _Reader(stream, counted_read, counted_read_at)

    def get_type_name(self) -> str:
        return "counting-local"

    def normalize_path(self, path: str) -> str:
        return self.local.normalize_path(path)

    def get_file_info(self, paths: list[str]) -> list[pafs.FileInfo]:
        return self.local.get_file_info(paths)

    def get_file_info_selector(self, selector: pafs.FileSelector) -> list[pafs.FileInfo]:
        return self.local.get_file_info(selector)

    def open_input_file(self, path: str) -> pa.NativeFile:
        return pa.PythonFile(self._counting(self.local.open_input_file(path)), mode="r")

    def open_input_stream(self, path: str) -> pa.NativeFile:
        return pa.PythonFile(self._counting(self.local.open_input_stream(path)), mode="r")

    def create_dir(self, path: str, recursive: bool) -> None:
        raise NotImplementedError

    def delete_dir(self, path: str) -> None:
        raise NotImplementedError

    def delete_dir_contents(self, path: str, missing_dir_ok: bool = False) -> None:
        raise NotImplementedError

    def delete_root_dir_contents(self) -> None:
        raise NotImplementedError

    def delete_file(self, path: str) -> None:
        raise NotImplementedError

    def move(self, src: str, dest: str) -> None:
        raise NotImplementedError

    def copy_file(self, src: str, dest: str) -> None:
        raise NotImplementedError

    def open_output_stream(self, path: str, metadata: Any = None) -> pa.NativeFile:
        raise NotImplementedError

    def open_append_stream(self, path: str, metadata: Any = None) -> pa.NativeFile:
        raise NotImplementedError


class _Reader:
    """A read-only file object over a pyarrow stream whose reads are counted."""

    def __init__(
        self, stream: Any, read: Callable[..., bytes], read_at: Callable[[int, int], bytes]
    ) -> None:
        self._stream = stream
        self.read = read
        self.read_at = read_at
        self.closed = False

    def seek(self, offset: int, whence: int = 0) -> int:
        return int(self._stream.seek(offset, whence))

    def tell(self) -> int:
        return int(self._stream.tell())

    def size(self) -> int:
        return int(self._stream.size())

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def writable(self) -> bool:
        return False

    def close(self) -> None:
        self._stream.close()
        self.closed = True


def _events() -> list[DecodedEvent]:
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    codec = Codec()
    workload = simulate(N_EVENTS, seed=1, start=today - timedelta(days=2))
    return [codec.decode(codec.encode(e)) for e in workload.events]


def _write_lake(root: Path, events: list[DecodedEvent]) -> tuple[Path, int, int]:
    """The events committed to a local Iceberg lake under ``root``, BATCH at a time: the
    folder holding one folder per table, and the number and bytes of its data files."""
    lake = local_lake(root, LakeTables(compression="zstd"))
    commit_events(lake, events, batch=BATCH)
    warehouse = root / LAKE
    data = list(warehouse.rglob("*.parquet"))
    return warehouse, len(data), sum(p.stat().st_size for p in data)


def _write_jsonl(root: Path, events: list[DecodedEvent]) -> tuple[int, int]:
    lines: dict[str, list[str]] = {}
    for event in events:
        day = event.record["metadata"]["occurred_at"].astimezone(UTC).date().isoformat()
        key = f"{table_name(event.event_type)}/{PARTITION_COLUMN}={day}/events.jsonl"
        text = json.dumps(event_to_json(event.record, event.event_type), separators=(",", ":"))
        lines.setdefault(key, []).append(text)
    size = 0
    for key, texts in lines.items():
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        data = ("\n".join(texts) + "\n").encode()
        path.write_bytes(data)
        size += len(data)
    return len(lines), size


def _run(
    root: Path,
    view: Callable[..., None],
    sql: str,
    profile: Path | None = None,
    settings: tuple[str, ...] = (),
) -> list[tuple[Any, ...]]:
    connection = _connect()
    try:
        for setting in settings:
            connection.execute(setting)
        for table in sorted(p.name for p in root.iterdir()):
            view(connection, root, table)
        duckdb_sql = to_duckdb_sql(sql, [p.name for p in root.iterdir()])
        if profile is not None:
            connection.execute("PRAGMA enable_profiling = 'json'")
            connection.execute(f"PRAGMA profiling_output = '{profile}'")
        return connection.execute(duckdb_sql).fetchall()
    finally:
        connection.close()


def _bytes_read(
    root: Path, view: Callable[..., None], sql: str, settings: tuple[str, ...] = ()
) -> tuple[int, list[Any]]:
    with tempfile.TemporaryDirectory() as tmp:
        profile = Path(tmp) / "profile.json"
        rows = _run(root, view, sql, profile, settings)
        metrics = json.loads(profile.read_text())
    return int(metrics["io"]["total_bytes_read"]), rows


def _counted_parquet_bytes(root: Path, sql: str) -> tuple[int, list[Any]]:
    """Bytes pyarrow hands DuckDB from the Parquet files when DuckDB scans them as datasets."""
    handler = _CountingHandler()
    filesystem = pafs.PyFileSystem(handler)
    partitioning = ds.partitioning(pa.schema([(PARTITION_COLUMN, pa.string())]), flavor="hive")
    connection = _connect()
    try:
        tables = sorted(p.name for p in root.iterdir())
        for table in tables:
            paths = sorted(str(p) for p in (root / table / "data").rglob("*.parquet"))
            dataset = ds.dataset(
                paths,
                format="parquet",
                filesystem=filesystem,
                partitioning=partitioning,
                partition_base_dir=str(root / table / "data"),
            )
            connection.register(table, dataset)
        handler.bytes_read = 0  # discovery reads footers once; count only the query's reads
        rows = connection.execute(to_duckdb_sql(sql, tables)).fetchall()
    finally:
        connection.close()
    return handler.bytes_read, rows


def _size(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())


def _same(left: list[tuple[Any, ...]], right: list[tuple[Any, ...]]) -> bool:
    if len(left) != len(right):
        return False
    for a_row, b_row in zip(left, right, strict=True):
        for a, b in zip(a_row, b_row, strict=True):
            if isinstance(a, float) and isinstance(b, float):
                if not math.isclose(a, b, rel_tol=1e-12):
                    return False
            elif a != b:
                return False
    return True


def main() -> None:
    pin_one_core()
    started = time.perf_counter()
    events = _events()
    with tempfile.TemporaryDirectory(prefix="bench-query-") as tmp:
        jsonl = Path(tmp) / "jsonl"
        lake, lake_files, lake_size = _write_lake(Path(tmp) / "iceberg", events)
        json_files, json_size = _write_jsonl(jsonl, events)
        print(
            f"{len(events):,} events ({time.perf_counter() - started:.1f} s to build): "
            f"lake {lake_files} Parquet files, {lake_size:,} bytes; "
            f"JSON lines {json_files} files, {json_size:,} bytes"
        )
        for label, (table, sql) in QUERIES.items():
            json_bytes, json_rows = _bytes_read(jsonl, _json_view, sql)
            parquet = {
                how: _bytes_read(lake, _parquet_view, sql, settings)
                for how, settings in PARQUET_READS.items()
            }
            counted, counted_rows = _counted_parquet_bytes(lake, sql)
            parquet_s = median_cpu(RUNS, partial(_run, lake, _parquet_view, sql))
            json_s = median_cpu(RUNS, partial(_run, jsonl, _json_view, sql))
            results = [rows for _, rows in parquet.values()] + [counted_rows]
            equal = all(_same(json_rows, rows) for rows in results)
            print(
                f"{label} ({table}; its files: Parquet {_size(lake / table):,} bytes, "
                f"JSON lines {_size(jsonl / table):,} bytes): "
                f"{len(json_rows)} row(s), Parquet and JSON lines results equal: {equal}"
            )
            print(f"  bytes read (DuckDB io.total_bytes_read): JSON lines {json_bytes:,}")
            for how, (parquet_bytes, _) in parquet.items():
                share = parquet_bytes / json_bytes if json_bytes else float("nan")
                verdict = ""
                if table == TARGET_TABLE:
                    ok = share <= SHARE_TARGET
                    verdict = f" (target <= {SHARE_TARGET:.0%}) {'OK' if ok else 'ABOVE TARGET'}"
                print(f"    Parquet, {how}: {parquet_bytes:,}: {share:.2%} of JSON{verdict}")
            print(f"    Parquet as pyarrow datasets, counted by the filesystem: {counted:,}")
            print(
                f"  query time (median of {RUNS}, fresh connection, defaults): Parquet "
                f"{parquet_s * 1000:.1f} ms, JSON lines {json_s * 1000:.1f} ms"
            )
            if not equal:
                print(f"  Parquet: {results}\n  JSON lines: {json_rows}")


if __name__ == "__main__":
    main()
