"""Wire-format figures: encode + aggregate, deaggregate + decode, bytes per event.

Targets (issue "Foundation"): encode + aggregate >= 80,000 events/s on one core;
>= 5,000 typical events per 1 MiB aggregate (>= 95% full); Avro <= 55% of compact
JSON; deaggregate + decode >= 100,000 events/s on one core.
"""

from __future__ import annotations

import json

from pipelines.contract.codec import Codec
from pipelines.contract.events import event_to_json
from pipelines.stream.aggregation import MAX_AGGREGATE_BYTES, Aggregator, deaggregate
from pipelines_local.simulator import simulate
from tests.benchmarks.timing import best_of, pin_one_core

N_EVENTS = 100_000


def main() -> None:
    pin_one_core()
    events = simulate(N_EVENTS, seed=1).events
    codec = Codec()
    keys = [e["metadata"]["aggregate_id"] for e in events]

    encoded = [codec.encode(e) for e in events]

    def aggregate(blobs: list[bytes]) -> list[tuple[bytes, int]]:
        out = []
        agg = Aggregator()
        for key, data in zip(keys, blobs, strict=True):
            if not agg.add(key, data):
                out.append((agg.seal(), len(agg)))
                agg = Aggregator()
                agg.add(key, data)
        out.append((agg.seal(), len(agg)))
        return out

    def encode_and_aggregate() -> list[tuple[bytes, int]]:
        return aggregate([codec.encode(e) for e in events])

    t_encode = best_of(3, lambda: [codec.encode(e) for e in events])
    t_aggregate = best_of(3, lambda: aggregate(encoded))
    t_both = best_of(3, encode_and_aggregate)

    aggregates = aggregate(encoded)
    full = aggregates[:-1] or aggregates
    per_record = sum(n for _, n in full) / len(full)
    fill = sum(len(blob) for blob, _ in full) / (len(full) * MAX_AGGREGATE_BYTES)

    avro_bytes = sum(len(b) for b in encoded)
    json_bytes = sum(
        len(
            json.dumps(
                event_to_json(e, e["metadata"]["event_type"]),
                separators=(",", ":"),
                ensure_ascii=False,
            ).encode()
        )
        for e in events
    )

    def deaggregate_all() -> list:
        return [sub for blob, _ in aggregates for sub in deaggregate(blob, "")]

    subs = deaggregate_all()
    t_deagg = best_of(3, deaggregate_all)
    t_decode = best_of(3, lambda: [codec.decode(s.data) for s in subs])
    t_read = best_of(
        3, lambda: [codec.decode(s.data) for blob, _ in aggregates for s in deaggregate(blob, "")]
    )

    rows = [
        ("encode + aggregate", f"{N_EVENTS / t_both:,.0f} events/s", ">= 80,000"),
        ("  encode alone", f"{N_EVENTS / t_encode:,.0f} events/s", ""),
        ("  aggregate alone", f"{N_EVENTS / t_aggregate:,.0f} events/s", ""),
        ("events per 1 MiB aggregate", f"{per_record:,.0f}", ">= 5,000"),
        ("aggregate fill", f"{fill:.1%}", ">= 95%"),
        ("avro bytes / compact JSON", f"{avro_bytes / json_bytes:.1%}", "<= 55%"),
        ("  mean avro bytes per event", f"{avro_bytes / N_EVENTS:.0f}", ""),
        ("deaggregate + decode", f"{N_EVENTS / t_read:,.0f} events/s", ">= 100,000"),
        ("  deaggregate alone", f"{N_EVENTS / t_deagg:,.0f} events/s", ""),
        ("  decode alone", f"{N_EVENTS / t_decode:,.0f} events/s", ""),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{N_EVENTS:,} simulated events (seed 1), one core, best of 3")
    for name, value, target in rows:
        print(f"{name:<{width}}  {value:>20}  {target}")


if __name__ == "__main__":
    main()
