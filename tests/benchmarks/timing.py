"""What every benchmark here shares: one core, CPU time, the median of several rounds."""

from __future__ import annotations

import gc
import os
import statistics
import time
from collections.abc import Callable


def pin_one_core() -> None:
    """Run on one core, as the targets are stated."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


def median_cpu(rounds: int, fn: Callable[[], object], *, gc_paused: bool = False) -> float:
    """The median CPU time of ``rounds`` runs of ``fn``, in seconds, each after a collection.

    CPU time (``process_time``), not wall time: what the machine's other work does between
    rounds does not count. With ``gc_paused`` the cyclic collector is off during each run, as
    the batch kernel pauses it while it decodes a batch.
    """
    times = []
    for _ in range(rounds):
        gc.collect()
        if gc_paused:
            gc.disable()
        start = time.process_time()
        try:
            fn()
        finally:
            times.append(time.process_time() - start)
            gc.enable()
    return statistics.median(times)


def paired_cpu(
    rounds: int, a: Callable[[], object], b: Callable[[], object], *, gc_paused: bool = False
) -> tuple[float, float]:
    """Median CPU times of ``a`` and ``b``, run in alternating rounds.

    For comparing two variants of the same work: whatever slows the machine down for a
    while (a neighbour, a frequency change) falls on both alike.
    """
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(rounds):
        for fn, out in ((a, times[0]), (b, times[1])):
            out.append(median_cpu(1, fn, gc_paused=gc_paused))
    return statistics.median(times[0]), statistics.median(times[1])
