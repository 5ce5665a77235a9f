"""What checking the contract costs on the decode path.

Target: validation under 10% of decode time. The same 100,000 simulated events, decoded
from their user records with the collector paused (as the kernel decodes), with and
without :func:`pipelines.contract.validation.validate`; CPU time, median of five rounds.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pipelines.contract.codec import Codec
from pipelines.contract.validation import check, latest_accepted, validate
from pipelines_local.simulator import simulate
from tests.benchmarks.timing import median_cpu, pin_one_core

N_EVENTS = 100_000
ROUNDS = 5


def main() -> None:
    pin_one_core()
    codec = Codec()
    encoded = [codec.encode(e) for e in simulate(N_EVENTS, seed=1).events]
    decoded = [codec.decode(b) for b in encoded]
    now = datetime.now(UTC)
    for event in decoded:
        validate(event, now)  # every simulated event keeps the contract

    def decode_and_validate() -> None:
        latest = latest_accepted(datetime.now(UTC))
        for data in encoded:
            check(codec.decode(data), latest)

    t_decode = median_cpu(ROUNDS, lambda: [codec.decode(b) for b in encoded], gc_paused=True)
    t_both = median_cpu(ROUNDS, decode_and_validate, gc_paused=True)
    latest = latest_accepted(now)
    t_validate = median_cpu(ROUNDS, lambda: [check(e, latest) for e in decoded], gc_paused=True)
    rows = [
        ("decode", f"{N_EVENTS / t_decode:,.0f} events/s", ""),
        ("decode + validate", f"{N_EVENTS / t_both:,.0f} events/s", ""),
        ("validate alone", f"{t_validate / N_EVENTS * 1e6:.2f} µs/event", ""),
        ("validation / decode time", f"{t_validate / t_decode:.1%}", "< 10%"),
        ("  measured as the difference", f"{(t_both - t_decode) / t_decode:.1%}", ""),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{N_EVENTS:,} simulated events (seed 1), one core, CPU time, median of {ROUNDS}")
    for name, value, target in rows:
        print(f"{name:<{width}}  {value:>20}  {target}")


if __name__ == "__main__":
    main()
