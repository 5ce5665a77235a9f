"""What every benchmark here shares: one core, best of a few runs."""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Callable


def pin_one_core() -> None:
    """Run on one core, as the targets are stated."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


def best_of(runs: int, fn: Callable[[], object]) -> float:
    """The fastest of ``runs`` timings of ``fn``, in seconds, each after a full collection."""
    best = float("inf")
    for _ in range(runs):
        gc.collect()
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best
