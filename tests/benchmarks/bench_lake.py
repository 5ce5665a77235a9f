"""Lake writer figures: decoded events to Parquet bytes in-process, S3 excluded.

Targets (issue "Lake writer"):

* rate: the lake writer (columns out of decoded Avro records, split by event
  type and event date, one Parquet file each) at >= 30% of pyarrow alone writing
  the same rows, already flattened, to one Parquet file per event type
  (``Table.from_pylist`` + ``write_table``, the same schema and codec);
* size: the lake's Parquet bytes <= 20% of the same events as JSON lines.

Both at a 10,000-event batch (KPL-aggregated Lambda batches hold thousands),
and the size also at 1,000-event batches, where per-file overhead shows.
"""

from __future__ import annotations

import gc
import json
import tempfile
import time
from functools import partial
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from pipelines.adapters.objects import ObjectStore
from pipelines.consumers.batch import KinesisBatchKernel
from pipelines.consumers.lake import LakeTables, LakeWriter
from pipelines.contract.codec import Codec, DecodedEvent
from pipelines.contract.events import event_to_json
from pipelines_local.simulator import simulate
from tests.benchmarks.timing import median_cpu, pin_one_core
from tests.kinesis_events import plain_records

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


def _lake_bytes(tables: LakeTables, events: list[DecodedEvent], batch: int) -> int:
    total = 0
    for start in range(0, len(events), batch):
        chunk = events[start : start + batch]
        total += sum(len(f.data) for f in tables.files(chunk, f"batch-{start}"))
    return total


def _whole_batches(events: list[dict[str, Any]], rounds: int = 5) -> float:
    """Events/s of the lake writer on the kernel, 1,000-record Lambda batches, into a folder.

    Wall-clock per batch as a function sees it (decode, Parquet, writes), the
    median of ``rounds`` passes over the workload.
    """
    records = plain_records(events)
    batches = [records[i : i + 1000] for i in range(0, len(records), 1000)]
    rates = []
    with tempfile.TemporaryDirectory() as root:
        writer = LakeWriter(
            ObjectStore(pafs.LocalFileSystem(), concurrency=1),
            lake_bucket=f"{root}/lake",
        )
        kernel = KinesisBatchKernel(writer, quarantine=None)  # type: ignore[arg-type]
        for _ in range(rounds):
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
        lake_s = median_cpu(5, partial(tables.files, events, "batch"))
        alone_s = median_cpu(5, partial(_pyarrow_alone, tables, rows))
        lake_rate, alone_rate = len(events) / lake_s, len(events) / alone_s
        ratio = lake_rate / alone_rate
        print(
            f"{compression}: lake writer {lake_rate:,.0f} events/s, pyarrow alone "
            f"{alone_rate:,.0f} events/s: {ratio:.0%} (target >= {RATE_TARGET:.0%}) "
            f"{'OK' if ratio >= RATE_TARGET else 'BELOW TARGET'}"
        )
        for batch in (N_EVENTS, 1_000):
            size = _lake_bytes(tables, events, batch)
            share = size / jsonl
            print(
                f"{compression}: {batch:,}-event batches: lake {size:,} bytes vs JSON lines "
                f"{jsonl:,} bytes: {share:.1%} (target <= {SIZE_TARGET:.0%}) "
                f"{'OK' if share <= SIZE_TARGET else 'ABOVE TARGET'}"
            )
    workload = simulate(N_EVENTS, seed=11).events
    thawed = _whole_batches(workload)
    gc.freeze()  # what each handler does once its consumer is built (freeze_heap)
    frozen = _whole_batches(workload)
    gc.unfreeze()
    print(
        f"whole batches on the kernel (1,000 records, local folder): {thawed:,.0f} events/s; "
        f"after gc.freeze() of the initialised heap: {frozen:,.0f} events/s "
        f"({frozen / thawed:.2f}x)"
    )


if __name__ == "__main__":
    main()
