"""Projector figures: one 10,000-event Lambda batch, planned in-process, I/O excluded.

Target (issue "Projector"): deaggregate + decode + build the DynamoDB writes
>= 50,000 events/s on one core. The batch is KPL-aggregated as the producer
sends it (about 1 MiB per Kinesis record). Also reported: where the time goes
(base64 + deaggregate, Avro decode, building the writes) and the planning of
the same events as one plain record per event.
"""

from __future__ import annotations

import base64
import gc
from collections.abc import Callable
from typing import Any

from pipelines.adapters.dynamo import MAX_BATCH_ITEMS
from pipelines.consumers.projector.projections import FactPut, Projections
from pipelines.consumers.projector.projector import Projector
from pipelines.contract.codec import Codec
from pipelines.stream.aggregation import Aggregator, deaggregate
from pipelines_local.simulator import simulate
from tests.benchmarks.timing import best_of, pin_one_core
from tests.kinesis_events import TABLES, kinesis_record

N_EVENTS = 10_000
TARGET = 50_000


def _paused(fn: Callable[[], object]) -> object:
    """Run ``fn`` with the cyclic collector off, as the projector plans."""
    gc.disable()
    try:
        return fn()
    finally:
        gc.enable()


def _aggregated_batch(codec: Codec, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    records = []
    agg = Aggregator()
    first_key = ""
    for event in events:
        key = event["metadata"]["aggregate_id"]
        data = codec.encode(event)
        if not agg.add(key, data):
            records.append(kinesis_record(agg.seal(), first_key, len(records)))
            agg = Aggregator()
            agg.add(key, data)
            first_key = ""
        first_key = first_key or key
    records.append(kinesis_record(agg.seal(), first_key, len(records)))
    return records


def _planner() -> Projector:
    # planning does no I/O: the writer and quarantine are never called
    return Projector(Projections(TABLES), writer=None, quarantine=None)  # type: ignore[arg-type]


def main() -> None:
    pin_one_core()
    codec = Codec()
    events = simulate(N_EVENTS, seed=1).events
    aggregated = _aggregated_batch(codec, events)
    plain = [
        kinesis_record(codec.encode(e), e["metadata"]["aggregate_id"], n)
        for n, e in enumerate(events)
    ]
    projector = _planner()

    plans = projector.plan(aggregated)
    writes = sum(len(p.facts) + len(p.updates) for p in plans)
    assert writes == N_EVENTS, writes
    facts = sum(len(p.facts) for p in plans)

    t_plan = best_of(5, lambda: projector.plan(aggregated))
    t_plain = best_of(5, lambda: projector.plan(plain))

    # where the time goes, stage by stage, on the same aggregated batch
    raw = [
        (base64.b64decode(r["kinesis"]["data"]), r["kinesis"]["partitionKey"]) for r in aggregated
    ]
    blobs = [sub.data for data, key in raw for sub in deaggregate(data, key)]
    decoded = [codec.decode(b) for b in blobs]
    projections = Projections(TABLES)
    t_unpack = best_of(
        5,
        lambda: [
            deaggregate(base64.b64decode(r["kinesis"]["data"]), r["kinesis"]["partitionKey"])
            for r in aggregated
        ],
    )
    t_decode = best_of(5, lambda: _paused(lambda: [codec.decode(b) for b in blobs]))
    t_build = best_of(5, lambda: _paused(lambda: [projections.write_for(d) for d in decoded]))
    t_event_ids = best_of(5, lambda: [d.event_id for d in decoded])

    rate = N_EVENTS / t_plan
    print(f"batch: {N_EVENTS:,} events in {len(aggregated)} aggregated Kinesis records")
    print(
        f"writes: {facts:,} fact puts ({-(-facts // MAX_BATCH_ITEMS)} BatchWriteItem calls), "
        f"{N_EVENTS - facts:,} conditional updates"
    )
    print(
        f"plan (deaggregate + decode + build writes): {t_plan * 1000:.1f} ms = "
        f"{rate:,.0f} events/s "
        f"(target {TARGET:,}: {'met' if rate >= TARGET else 'NOT met'})"
    )
    print(
        f"same events as {len(plain):,} plain records: {N_EVENTS / t_plain:,.0f} events/s "
        f"({t_plain * 1000:.1f} ms)"
    )
    print(f"ceiling set by Avro decode alone: {N_EVENTS / t_decode:,.0f} events/s")
    print("where the time goes (aggregated batch):")
    for name, seconds in (
        ("base64 + deaggregate + MD5", t_unpack),
        ("Avro decode", t_decode),
        ("build DynamoDB writes", t_build),
        ("  of which event_id str()", t_event_ids),
    ):
        print(f"  {name:<28} {seconds * 1000:7.1f} ms  {seconds / t_plan:5.0%}")
    rest = t_plan - t_unpack - t_decode - t_build
    print(f"  {'batch bookkeeping':<28} {rest * 1000:7.1f} ms  {rest / t_plan:5.0%}")
    assert all(isinstance(w, FactPut) for p in plans for w in p.facts)


if __name__ == "__main__":
    main()
