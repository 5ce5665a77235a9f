"""Event time as text: ISO 8601 UTC with milliseconds, sortable as a string.

Sort keys of the read models and the alert state (``<occurred_at>#<event_id>``) and alert
messages all spell event time this way, so that string order is time order.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def iso_millis(moment: datetime) -> str:
    """``2026-11-01T00:00:50.363Z``: the instant in UTC, sortable as a string."""
    return iso_from_epoch_millis(round(moment.timestamp() * 1000))


_DAY_PREFIXES: dict[int, str] = {}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def iso_from_epoch_millis(millis: int) -> str:
    """ISO 8601 UTC with milliseconds for epoch milliseconds (fast: day prefixes cached)."""
    day, rest = divmod(millis, 86_400_000)
    prefix = _DAY_PREFIXES.get(day)
    if prefix is None:
        prefix = (_EPOCH + timedelta(days=day)).strftime("%Y-%m-%dT")
        if len(_DAY_PREFIXES) < 4096:
            _DAY_PREFIXES[day] = prefix
    seconds, ms = divmod(rest, 1000)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return prefix + "%02d:%02d:%02d.%03dZ" % (hours, minutes, seconds, ms)  # noqa: UP031 (faster)
