"""Knobs of the local runtime that AWS does not expose (its pollers' internals)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RuntimeOptions:
    """How the local pollers pace themselves.

    * ``infinite_retry_cap`` - ``MaximumRetryAttempts: -1`` means "until the record expires" on
      AWS (up to a week); locally retries stop after this many, with a warning at start-up.
    * ``retry_base_delay`` / ``retry_max_delay`` - exponential backoff between retries of a
      failed batch (bisected halves are retried at once, as on AWS).
    * ``idle_sleep`` - pause of the loop when no mapping had anything to do.
    * ``shard_refresh_seconds`` - how often streams are listed again for new shards.
    * ``max_records_per_fetch`` - ``GetRecords`` limit (AWS's maximum is 10,000).
    * ``max_payload_bytes`` - invocation payload limit (Lambda's synchronous 6 MB).
    """

    infinite_retry_cap: int = 20
    retry_base_delay: float = 0.05
    retry_max_delay: float = 2.0
    idle_sleep: float = 0.05
    shard_refresh_seconds: float = 10.0
    max_records_per_fetch: int = 10_000
    max_payload_bytes: int = 6 * 1024 * 1024

    def retry_delay(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt`` (1-based)."""
        return float(min(self.retry_max_delay, self.retry_base_delay * 2 ** max(0, attempt - 1)))
