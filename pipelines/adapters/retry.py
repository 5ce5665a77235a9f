"""How patiently a call to AWS is retried: bounded exponential backoff with full jitter."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """At most ``max_attempts`` tries; before try ``n + 1``, sleep up to ``base * 2**(n-1)``.

    The sleep is drawn uniformly from zero to that ceiling ("full jitter"), capped at
    ``max_delay`` seconds, so that clients retrying together spread out.
    """

    max_attempts: int = 6
    base_delay: float = 0.05  # seconds
    max_delay: float = 2.0  # seconds

    def delay(self, attempt: int, jitter: Callable[[], float] = random.random) -> float:
        """Seconds to sleep before retry number ``attempt`` (1-based)."""
        ceiling = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return ceiling * jitter()
