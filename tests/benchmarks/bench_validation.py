"""What checking the contract costs on the decode path.

Target: validation under 10% of decode time. The same 100,000 simulated events, decoded
from their user records with the collector paused (as the kernel decodes), with and
without :func:`pipelines.contract.validation.check` right after each decode, as the decode
path does; CPU time, median of nine alternating rounds. "validate over decoded events" checks events
decoded long before (the whole list, out of the CPU caches): what validating costs when its
reads miss. The whole decode path is what the kernel runs for a batch (base64, deaggregate,
decode, validate, over the events in 1 MiB aggregates), with and without validation.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pipelines.stream.records as records_module
from pipelines.contract.codec import Codec
from pipelines.contract.validation import check, latest_accepted, validate
from pipelines.stream.records import decode_lambda_record
from pipelines_local.simulator import simulate
from tests.benchmarks.bench_wire import aggregate
from tests.benchmarks.timing import median_cpu, paired_cpu, pin_one_core
from tests.kinesis_events import kinesis_record

N_EVENTS = 100_000
ROUNDS = 9


def main() -> None:
    pin_one_core()
    codec = Codec()
    encoded = [codec.encode(e) for e in simulate(N_EVENTS, seed=1).events]
    decoded = [codec.decode(b) for b in encoded]
    now = datetime.now(UTC)
    for event in decoded:
        validate(event, now)  # every simulated event keeps the contract

    def decode_only() -> None:
        decode = codec.decode
        for data in encoded:
            decode(data)

    def decode_and_validate() -> None:
        decode = codec.decode
        latest = latest_accepted(datetime.now(UTC))
        for data in encoded:
            check(decode(data), latest)

    t_decode, t_both = paired_cpu(ROUNDS, decode_only, decode_and_validate, gc_paused=True)
    latest = latest_accepted(now)

    def validate_decoded() -> None:
        for event in decoded:
            check(event, latest)

    t_validate = median_cpu(ROUNDS, validate_decoded, gc_paused=True)

    # The whole decode path the kernel runs: base64, deaggregate, decode, validate.
    events = simulate(N_EVENTS, seed=1).events
    keys = [e["metadata"]["aggregate_id"] for e in events]
    lambda_records = [
        kinesis_record(blob, keys[0], n) for n, (blob, _) in enumerate(aggregate(keys, encoded))
    ]

    def path() -> None:
        for record in lambda_records:
            decode_lambda_record(record, codec)

    def path_unchecked() -> None:
        records_module.check = _unchecked
        try:
            path()
        finally:
            records_module.check = check

    t_path, t_path_unchecked = paired_cpu(ROUNDS, path, path_unchecked, gc_paused=True)
    rows = [
        ("decode", f"{N_EVENTS / t_decode:,.0f} events/s", ""),
        ("decode + validate", f"{N_EVENTS / t_both:,.0f} events/s", ""),
        ("validation / decode time", f"{(t_both - t_decode) / t_decode:.1%}", "< 10%"),
        ("  validation per event", f"{(t_both - t_decode) / N_EVENTS * 1e6:.2f} µs", ""),
        ("  validate over decoded events", f"{t_validate / N_EVENTS * 1e6:.2f} µs/event", ""),
        ("whole decode path", f"{N_EVENTS / t_path:,.0f} events/s", ""),
        ("  without validation", f"{N_EVENTS / t_path_unchecked:,.0f} events/s", ""),
        (
            "validation / whole path time",
            f"{(t_path - t_path_unchecked) / t_path_unchecked:.1%}",
            "< 10%",
        ),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{N_EVENTS:,} simulated events (seed 1), one core, CPU time, median of {ROUNDS}")
    for name, value, target in rows:
        print(f"{name:<{width}}  {value:>20}  {target}")


def _unchecked(event: Any, latest: Any) -> None:
    """The decode path with the contract left out, for comparison only."""


if __name__ == "__main__":
    main()
