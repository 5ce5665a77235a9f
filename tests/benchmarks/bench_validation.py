"""What checking the contract costs on the decode path.

Target: validation under 10% of decode time. The same 100,000 simulated events, decoded
from their user records with the collector paused (as the kernel decodes), with and
without :func:`pipelines.contract.validation.check` right after each decode, as the decode
path does; CPU time, median of seven rounds. The last figure checks events decoded long
before (the whole list, out of the CPU caches): what validating costs when its reads miss.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pipelines.contract.codec import Codec
from pipelines.contract.validation import check, latest_accepted, validate
from pipelines_local.simulator import simulate
from tests.benchmarks.timing import median_cpu, pin_one_core

N_EVENTS = 100_000
ROUNDS = 7


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

    t_decode = median_cpu(ROUNDS, decode_only, gc_paused=True)
    t_both = median_cpu(ROUNDS, decode_and_validate, gc_paused=True)
    latest = latest_accepted(now)
    t_validate = median_cpu(ROUNDS, lambda: [check(e, latest) for e in decoded], gc_paused=True)
    rows = [
        ("decode", f"{N_EVENTS / t_decode:,.0f} events/s", ""),
        ("decode + validate", f"{N_EVENTS / t_both:,.0f} events/s", ""),
        ("validation / decode time", f"{(t_both - t_decode) / t_decode:.1%}", "< 10%"),
        ("  validation per event", f"{(t_both - t_decode) / N_EVENTS * 1e6:.2f} µs", ""),
        ("  validate over decoded events", f"{t_validate / N_EVENTS * 1e6:.2f} µs/event", ""),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{N_EVENTS:,} simulated events (seed 1), one core, CPU time, median of {ROUNDS}")
    for name, value, target in rows:
        print(f"{name:<{width}}  {value:>20}  {target}")


if __name__ == "__main__":
    main()
