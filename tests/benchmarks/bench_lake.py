"""Lake writer figures: decoded events to Iceberg commits in-process, S3 and Glue excluded.

The tables are the lake's Iceberg tables in a SQLite catalog with a local warehouse (the
same pyiceberg commit path as Glue and S3, without the network). Targets:

* rate: the lake writer (columns out of decoded Avro records, split by event type, the
  watermark and event-id checks, one Iceberg commit per table) at >= 30% of pyarrow alone
  writing the same rows, already flattened, to one Parquet file per event type
  (``Table.from_pylist`` + ``write_table``, the same schema and codec);
* size: the lake's Parquet data files <= 20% of the same events as JSON lines (Iceberg's
  own metadata, manifests and snapshots, reported beside).

Both at a 10,000-event batch (KPL-aggregated Lambda batches hold thousands), and the size
also at 1,000-event batches, where per-file overhead shows.
"""

from __future__ import annotations

import gc
import json
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.consumers.batch import KinesisBatchKernel
from pipelines.consumers.lake import LakeTables, LakeWriter
from pipelines.contract.codec import Codec, DecodedEvent
from pipelines.contract.events import event_to_json
from pipelines_local.simulator import simulate
from tests.benchmarks.timing import median_cpu, pin_one_core
from tests.kinesis_events import plain_records
from tests.lake import commit_events, local_lake

N_EVENTS = 10_000
RATE_TARGET = 0.30
SIZE_TARGET = 0.20


def _flat_rows(events: list[DecodedEvent]) -> dict[str, list[dict[str, Any]]]:
    by_type: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        row = {**event.record["metadata"], **event.record}
        del row["metadata"]
        by_type.setdefault(event.event_type, []).append(row)
    return by_type


def _pyarrow_alone(tables: LakeTables, rows: dict[str, list[dict[str, Any]]]) -> int:
    size = 0
    for event_type, type_rows in rows.items():
        table = pa.Table.from_pylist(type_rows, schema=tables.schema(event_type))
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, compression=tables.compression)
        size += sink.tell()
    return size


def _sizes(root: Path) -> tuple[int, int]:
    """Bytes of the lake's Parquet data files, and of everything else Iceberg wrote."""
    data = metadata = 0
    for path in root.rglob("*"):
        if path.is_file() and path.name != "catalog.db":
            if path.suffix == ".parquet":
                data += path.stat().st_size
            else:
                metadata += path.stat().st_size
    return data, metadata


class FreshLakes:
    """Lakes with their tables created, made before the clock starts: each call commits
    ``events`` into the next one, so every round is a first write (no watermark or event id
    to skip) and table creation, once per table's life, is not counted."""

    def __init__(self, tables: LakeTables, events: list[DecodedEvent], rounds: int) -> None:
        self.events = events
        self.dirs = [tempfile.TemporaryDirectory() for _ in range(rounds)]
        self.lakes = [local_lake(Path(d.name), tables) for d in self.dirs]
        for lake in self.lakes:
            lake.ensure_all()

    def __call__(self) -> None:
        commit_events(self.lakes.pop(0), self.events, batch=len(self.events))

    def close(self) -> None:
        for d in self.dirs:
            d.cleanup()


def _lake_bytes(tables: LakeTables, events: list[DecodedEvent], batch: int) -> tuple[int, int]:
    with tempfile.TemporaryDirectory() as root:
        commit_events(local_lake(Path(root), tables), events, batch=batch)
        return _sizes(Path(root))


def _whole_batches(events: list[dict[str, Any]], rounds: int = 5) -> float:
    """Events/s of the lake writer on the kernel, 1,000-record Lambda batches, into a local
    Iceberg lake.

    CPU time per batch as a function sees it (decode, Parquet, commits), the median of
    ``rounds`` passes over the workload, each into a fresh lake.
    """
    records = plain_records(events)
    batches = [records[i : i + 1000] for i in range(0, len(records), 1000)]
    rates = []
    for _ in range(rounds):
        with tempfile.TemporaryDirectory() as root:
            lake = local_lake(Path(root))
            lake.ensure_all()
            kernel = KinesisBatchKernel(LakeWriter(lake), quarantine=None)  # type: ignore[arg-type]
            start = time.process_time()
            for batch in batches:
                assert kernel.process_batch(batch).errors == [None] * len(batch)
            rates.append(len(records) / (time.process_time() - start))
    return sorted(rates)[len(rates) // 2]


def main() -> None:
    pin_one_core()
    codec = Codec()
    events = [codec.decode(codec.encode(e)) for e in simulate(N_EVENTS, seed=11).events]
    jsonl = sum(
        len(json.dumps(event_to_json(e.record, e.event_type), separators=(",", ":"))) + 1
        for e in events
    )
    for compression in ("zstd", "snappy"):
        tables = LakeTables(compression=compression)
        rows = _flat_rows(events)
        lakes = FreshLakes(tables, events, 5)
        lake_s = median_cpu(5, lakes)
        lakes.close()
        alone_s = median_cpu(5, partial(_pyarrow_alone, tables, rows))
        lake_rate, alone_rate = len(events) / lake_s, len(events) / alone_s
        ratio = lake_rate / alone_rate
        print(
            f"{compression}: lake writer {lake_rate:,.0f} events/s, pyarrow alone "
            f"{alone_rate:,.0f} events/s: {ratio:.0%} (target >= {RATE_TARGET:.0%}) "
            f"{'OK' if ratio >= RATE_TARGET else 'BELOW TARGET'}"
        )
        for batch in (N_EVENTS, 1_000):
            size, metadata = _lake_bytes(tables, events, batch)
            share = size / jsonl
            print(
                f"{compression}: {batch:,}-event batches: lake data files {size:,} bytes vs "
                f"JSON lines {jsonl:,} bytes: {share:.1%} (target <= {SIZE_TARGET:.0%}) "
                f"{'OK' if share <= SIZE_TARGET else 'ABOVE TARGET'}; Iceberg metadata "
                f"{metadata:,} bytes more ({(size + metadata) / jsonl:.1%} in all)"
            )
    workload = simulate(N_EVENTS, seed=11).events
    thawed = _whole_batches(workload)
    gc.freeze()  # what each handler does once its consumer is built (freeze_heap)
    frozen = _whole_batches(workload)
    gc.unfreeze()
    print(
        f"whole batches on the kernel (1,000 records, local Iceberg lake): {thawed:,.0f} "
        f"events/s; "
        f"after gc.freeze() of the initialised heap: {frozen:,.0f} events/s "
        f"({frozen / thawed:.2f}x)"
    )


if __name__ == "__main__":
    main()
