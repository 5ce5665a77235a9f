"""The codec's generated fast path against fastavro alone: encode and decode figures.

``Codec()`` tries the code generated per schema (``pipelines.contract.generated``)
first; ``Codec(fast=False)`` is fastavro alone, the reference. Both are timed on
the same simulated events, whole ``encode``/``decode`` calls (header, fingerprint
look-up and checks included), after checking that they give the same bytes and
the same records. CPU time on one core, the median of a few rounds, with the
garbage collector paused during each round as the consumers pause it while they
decode a batch.
"""

from __future__ import annotations

from collections.abc import Callable

from pipelines.contract.codec import Codec
from pipelines_local.simulator import simulate
from tests.benchmarks.timing import median_cpu, pin_one_core

N_EVENTS = 100_000
ROUNDS = 5


def _median_cpu(fn: Callable[[], object]) -> float:
    return median_cpu(ROUNDS, fn, gc_paused=True)


def main() -> None:
    pin_one_core()
    events = simulate(N_EVENTS, seed=1).events
    fast, reference = Codec(), Codec(fast=False)

    wires = [reference.encode(e) for e in events]
    assert [fast.encode(e) for e in events] == wires, "the fast path wrote other bytes"
    assert [fast.decode(w) for w in wires] == [reference.decode(w) for w in wires], (
        "the fast path read other records"
    )

    t_encode_ref = _median_cpu(lambda: [reference.encode(e) for e in events])
    t_encode_fast = _median_cpu(lambda: [fast.encode(e) for e in events])
    t_decode_ref = _median_cpu(lambda: [reference.decode(w) for w in wires])
    t_decode_fast = _median_cpu(lambda: [fast.decode(w) for w in wires])

    def row(name: str, seconds: float) -> str:
        rate = f"{N_EVENTS / seconds:,.0f} events/s"
        return f"{name:<34} {seconds:7.3f} s  {rate:>20}  {seconds / N_EVENTS * 1e6:6.2f} us/event"

    print(
        f"{N_EVENTS:,} simulated events (seed 1), one core, CPU time (process_time), "
        f"median of {ROUNDS} rounds, garbage collector paused during each round "
        "(as the consumers pause it while decoding)"
    )
    print(row("encode, fastavro (fast=False)", t_encode_ref))
    print(row("encode, generated (Codec())", t_encode_fast))
    print(f"{'  encode speed-up':<34} {t_encode_ref / t_encode_fast:7.2f} x")
    print(row("decode, fastavro (fast=False)", t_decode_ref))
    print(row("decode, generated (Codec())", t_decode_fast))
    print(f"{'  decode speed-up':<34} {t_decode_ref / t_decode_fast:7.2f} x")
    print("outputs checked equal: same bytes from both encoders, same records from both decoders")


if __name__ == "__main__":
    main()
