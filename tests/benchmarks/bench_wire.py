"""Wire-format figures: encode + aggregate, deaggregate + decode, bytes per event.

Targets: encode + aggregate >= 80,000 events/s on one core; >= 5,000 typical events per
1 MiB aggregate; Avro <= 55% of compact JSON; deaggregate + decode >= 100,000 events/s on
one core. CPU time, the median of five rounds; decoding with the cyclic garbage collector
paused, as the batch kernel decodes a batch. The reference figures beside them are the same
work on fastavro alone (``Codec(fast=False)``) and, for decoding, with the collector on.
"""

from __future__ import annotations

import json

from pipelines.contract.codec import Codec
from pipelines.contract.events import event_to_json
from pipelines.stream.aggregation import MAX_AGGREGATE_BYTES, Aggregator, deaggregate
from pipelines.stream.records import decode_lambda_record, decode_stream_record
from pipelines_local.simulator import simulate
from tests.benchmarks.timing import median_cpu, pin_one_core
from tests.kinesis_events import kinesis_record

N_EVENTS = 100_000
ROUNDS = 5


def aggregate(keys: list[str], blobs: list[bytes]) -> list[tuple[bytes, int]]:
    """As the producer aggregates: one partition key per aggregate, its first event's."""
    out = []
    agg = Aggregator()
    key = keys[0]
    for event_key, data in zip(keys, blobs, strict=True):
        if not agg.add(key, data):
            out.append((agg.seal(), len(agg)))
            agg, key = Aggregator(), event_key
            agg.add(key, data)
    out.append((agg.seal(), len(agg)))
    return out


def main() -> None:
    pin_one_core()
    events = simulate(N_EVENTS, seed=1).events
    codec, reference = Codec(), Codec(fast=False)
    keys = [e["metadata"]["aggregate_id"] for e in events]
    encoded = [codec.encode(e) for e in events]
    assert encoded == [reference.encode(e) for e in events]

    t_both = median_cpu(ROUNDS, lambda: aggregate(keys, [codec.encode(e) for e in events]))
    t_both_ref = median_cpu(ROUNDS, lambda: aggregate(keys, [reference.encode(e) for e in events]))
    t_encode = median_cpu(ROUNDS, lambda: [codec.encode(e) for e in events])
    t_aggregate = median_cpu(ROUNDS, lambda: aggregate(keys, encoded))

    aggregates = aggregate(keys, encoded)
    full = aggregates[:-1] or aggregates
    per_record = sum(n for _, n in full) / len(full)
    fill = sum(len(blob) for blob, _ in full) / (len(full) * MAX_AGGREGATE_BYTES)
    avro_bytes = sum(len(b) for b in encoded)
    json_bytes = sum(
        len(json.dumps(event_to_json(e, e["metadata"]["event_type"]), separators=(",", ":")))
        for e in events
    )

    def read(with_codec: Codec) -> int:
        return sum(
            len(
                decode_stream_record(
                    b, partition_key="k", sequence_number="1", codec=with_codec
                ).events
            )
            for b, _ in aggregates
        )

    assert read(codec) == N_EVENTS
    lambda_records = [kinesis_record(blob, keys[0], n) for n, (blob, _) in enumerate(aggregates)]
    t_read = median_cpu(ROUNDS, lambda: read(codec), gc_paused=True)
    t_read_gc = median_cpu(ROUNDS, lambda: read(codec))
    t_read_ref = median_cpu(ROUNDS, lambda: read(reference), gc_paused=True)
    t_lambda = median_cpu(
        ROUNDS, lambda: [decode_lambda_record(r, codec) for r in lambda_records], gc_paused=True
    )
    subs = [sub.data for blob, _ in aggregates for sub in deaggregate(blob, "")]
    t_deagg = median_cpu(ROUNDS, lambda: [deaggregate(blob, "") for blob, _ in aggregates])
    t_decode = median_cpu(ROUNDS, lambda: [codec.decode(s) for s in subs], gc_paused=True)

    rows = [
        ("encode + aggregate", f"{N_EVENTS / t_both:,.0f} events/s", ">= 80,000"),
        ("  on fastavro alone", f"{N_EVENTS / t_both_ref:,.0f} events/s", ""),
        ("  encode alone", f"{N_EVENTS / t_encode:,.0f} events/s", ""),
        ("  aggregate alone", f"{N_EVENTS / t_aggregate:,.0f} events/s", ""),
        ("events per 1 MiB aggregate", f"{per_record:,.0f}", ">= 5,000"),
        ("aggregate fill", f"{fill:.1%}", ">= 95%"),
        ("avro bytes / compact JSON", f"{avro_bytes / json_bytes:.1%}", "<= 55%"),
        ("  mean avro bytes per event", f"{avro_bytes / N_EVENTS:.0f}", ""),
        ("deaggregate + decode", f"{N_EVENTS / t_read:,.0f} events/s", ">= 100,000"),
        ("  with base64 (the Lambda path)", f"{N_EVENTS / t_lambda:,.0f} events/s", ""),
        ("  with the collector on", f"{N_EVENTS / t_read_gc:,.0f} events/s", ""),
        ("  on fastavro alone", f"{N_EVENTS / t_read_ref:,.0f} events/s", ""),
        ("  deaggregate alone", f"{N_EVENTS / t_deagg:,.0f} events/s", ""),
        ("  decode alone", f"{N_EVENTS / t_decode:,.0f} events/s", ""),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{N_EVENTS:,} simulated events (seed 1), one core, CPU time, median of {ROUNDS}")
    for name, value, target in rows:
        print(f"{name:<{width}}  {value:>20}  {target}")


if __name__ == "__main__":
    main()
