"""Projector figures: one 10,000-event Lambda batch, planned in-process, I/O excluded.

Target: the batch kernel's decode (base64 + deaggregate + Avro decode) and the projector's
writes >= 50,000 events/s on one core. The batch is KPL-aggregated as the producer sends it
(about 1 MiB per Kinesis record, one partition key per aggregate). CPU time, the median of
five rounds, the cyclic collector paused as the kernel pauses it for a batch. Also
reported: where the time goes, and the same events as one plain record per event.
"""

from __future__ import annotations

import base64
from typing import Any

from pipelines.adapters.dynamo import MAX_BATCH_ITEMS, FactPut
from pipelines.consumers.batch import Batch, KinesisBatchKernel
from pipelines.consumers.projector.projections import Projections
from pipelines.consumers.projector.projector import Projector, RecordWrites
from pipelines.contract.codec import Codec
from pipelines.stream.aggregation import Aggregator, deaggregate
from pipelines_local.simulator import simulate
from tests.benchmarks.timing import median_cpu, pin_one_core
from tests.kinesis_events import TABLES, kinesis_record

N_EVENTS = 10_000
TARGET = 50_000
ROUNDS = 5


def _aggregated_batch(codec: Codec, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    records = []
    agg = Aggregator()
    key = events[0]["metadata"]["aggregate_id"]
    for event in events:
        data = codec.encode(event)
        if not agg.add(key, data):
            records.append(kinesis_record(agg.seal(), key, len(records)))
            agg, key = Aggregator(), event["metadata"]["aggregate_id"]
            agg.add(key, data)
    records.append(kinesis_record(agg.seal(), key, len(records)))
    return records


def _planner() -> tuple[KinesisBatchKernel, Projector]:
    # planning does no I/O: the writer and the quarantine are never called
    projector = Projector(Projections(TABLES), writer=None)  # type: ignore[arg-type]
    return KinesisBatchKernel(projector, quarantine=None), projector  # type: ignore[arg-type]


def main() -> None:
    pin_one_core()
    codec = Codec()
    events = simulate(N_EVENTS, seed=1).events
    aggregated = _aggregated_batch(codec, events)
    plain = [
        kinesis_record(codec.encode(e), e["metadata"]["aggregate_id"], n)
        for n, e in enumerate(events)
    ]
    kernel, projector = _planner()

    def plan(records: list[dict[str, Any]]) -> list[RecordWrites]:
        return projector.plan(kernel.decode_batch(records))

    plans = plan(aggregated)
    writes = sum(len(p.facts) + len(p.updates) for p in plans)
    assert writes == N_EVENTS, writes
    facts = sum(len(p.facts) for p in plans)

    # the kernel pauses the cyclic collector for a whole batch, planning included
    t_plan = median_cpu(ROUNDS, lambda: plan(aggregated), gc_paused=True)
    t_plain = median_cpu(ROUNDS, lambda: plan(plain), gc_paused=True)

    # where the time goes, stage by stage, on the same aggregated batch
    batch: Batch = kernel.decode_batch(aggregated)
    raw = [
        (base64.b64decode(r["kinesis"]["data"]), r["kinesis"]["partitionKey"]) for r in aggregated
    ]
    blobs = [sub.data for data, key in raw for sub in deaggregate(data, key)]
    delivered = [d for r in batch.records for d in r.events]
    projections = Projections(TABLES)
    t_decode_batch = median_cpu(ROUNDS, lambda: kernel.decode_batch(aggregated), gc_paused=True)
    t_unpack = median_cpu(
        ROUNDS,
        lambda: [
            deaggregate(base64.b64decode(r["kinesis"]["data"]), r["kinesis"]["partitionKey"])
            for r in aggregated
        ],
    )
    t_decode = median_cpu(ROUNDS, lambda: [codec.decode(b) for b in blobs], gc_paused=True)
    t_build = median_cpu(
        ROUNDS,
        lambda: [projections.write_for(d.event, len(d.data)) for d in delivered],
        gc_paused=True,
    )

    rate = N_EVENTS / t_plan
    print(f"batch: {N_EVENTS:,} events in {len(aggregated)} aggregated Kinesis records")
    print(
        f"writes: {facts:,} fact puts ({-(-facts // MAX_BATCH_ITEMS)} BatchWriteItem calls), "
        f"{N_EVENTS - facts:,} conditional updates"
    )
    print(
        f"plan (kernel decode + projector writes): {t_plan * 1000:.1f} ms CPU = "
        f"{rate:,.0f} events/s (target {TARGET:,}: {'met' if rate >= TARGET else 'NOT met'})"
    )
    print(
        f"same events as {len(plain):,} plain records: {N_EVENTS / t_plain:,.0f} events/s "
        f"({t_plain * 1000:.1f} ms)"
    )
    print("where the time goes (aggregated batch):")
    stages: list[tuple[str, float]] = [
        ("kernel decode (all of it)", t_decode_batch),
        ("  base64 + deaggregate + MD5", t_unpack),
        ("  Avro decode", t_decode),
        ("build DynamoDB writes", t_build),
    ]
    for name, seconds in stages:
        print(f"  {name:<30} {seconds * 1000:7.1f} ms  {seconds / t_plan:5.0%}")
    rest = t_plan - t_decode_batch - t_build
    print(f"  {'batch bookkeeping':<30} {rest * 1000:7.1f} ms  {rest / t_plan:5.0%}")
    assert all(isinstance(w, FactPut) for p in plans for w in p.facts)


if __name__ == "__main__":
    main()
