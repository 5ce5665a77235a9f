"""The contract beyond what Avro can say, checked once on the one decode path.

An event that decodes can still be one no consumer can apply: an Avro ``string`` may be
empty, a ``double`` infinite, a ``long`` absurd, a ``decimal`` wider than its declared
precision (Avro stores the unscaled integer in as many bytes as it needs, and readers round
it to the precision: 123456789012345678901234.5 would read as 1.23456789012345679E+23).
:func:`validate` checks what every consumer relies on, so that the projector, the lake
writer, the archive and the alerter all see the same events and quarantine the same
others (:mod:`pipelines.stream.records` calls it for every event it decodes):

* ``metadata.event_id`` is a UUID in its RFC 4122 text form;
* ``metadata.aggregate_id`` is the body field it names (``user_id``, ``source``, ``key``:
  :data:`~pipelines.contract.events.AGGREGATE_FIELD`), not empty, at most
  :data:`MAX_KEY_BYTES` bytes of UTF-8 (DynamoDB's limit for a sort key; it is the partition
  key of the stream and of most read models);
* ``metadata.occurred_at`` lies in ``[EVENT_TIME_FLOOR, now + CLOCK_SKEW]``: nothing is dated
  before the lake's first partition (the Glue partition projection starts there too), and
  nothing from the future beyond a clock-skew allowance, so a mis-set clock cannot freeze a
  projection ordered by event time or push a baseline out of reach;
* ``metadata.aggregate_version``, when set, is in ``[1, MAX_AGGREGATE_VERSION]`` (2^53 - 1:
  exact in every JSON reader and in DynamoDB numbers);
* every ``decimal`` fits its declared precision and scale exactly, never rounded;
* every ``float`` and ``double`` is finite; a label's confidence is a percentage;
* a transaction's ``status`` is one of :data:`TRANSACTION_STATUSES` and its ``amount`` is
  not negative: a refund is ``status = "refunded"`` with the positive amount returned, so
  sums by status never mix signs.

A violation raises :class:`ContractViolationError` (poison: quarantined with its bytes), its
``field`` naming the offending field by path (``metadata.occurred_at``, ``amount``,
``labels[2].confidence``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from math import isfinite
from typing import Any

from pipelines.contract.codec import DecodedEvent
from pipelines.contract.events import AGGREGATE_FIELD
from pipelines.errors import InvalidEventError
from pipelines.event_time import EVENT_TIME_FLOOR

CLOCK_SKEW = timedelta(minutes=5)
MAX_AGGREGATE_VERSION = 2**53 - 1
MAX_KEY_BYTES = 1024
TRANSACTION_STATUSES = frozenset({"pending", "completed", "declined", "refunded"})

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_is_uuid = _UUID.fullmatch
# A string this short fits MAX_KEY_BYTES whatever its characters (at most 4 bytes each).
_SURELY_SHORT = MAX_KEY_BYTES // 4
# decimal(18,4): what the unscaled value may reach, as a bound on the scaled one.
_AMOUNT_LIMIT = Decimal(10) ** (18 - 4)


class ContractViolationError(InvalidEventError):
    """The event decodes but breaks the contract; ``field`` names what is wrong."""

    code = "contract_violation"

    def __init__(self, event_type: str, field: str, problem: str, raw: bytes = b"") -> None:
        super().__init__(f"{event_type}.{field} {problem}", raw)
        self.event_type = event_type
        self.field = field


def validate(event: DecodedEvent, now: datetime) -> None:
    """Raise :class:`ContractViolationError` unless ``event`` keeps the contract at ``now``."""
    check(event, latest_accepted(now))


def latest_accepted(now: datetime) -> datetime:
    """The latest event time accepted at ``now``: ``now`` plus the clock-skew allowance."""
    return now + CLOCK_SKEW


def check(event: DecodedEvent, latest: datetime) -> None:
    """:func:`validate`, given :func:`latest_accepted` (computed once for many events).

    The common case, an event that keeps the contract, is one expression; any doubt goes to
    :func:`_explain`, which checks each rule in turn and raises naming the field.
    """
    record = event.record
    metadata = record["metadata"]
    rules = _RULES.get(event.event_type)
    aggregate_id = metadata["aggregate_id"]
    version = metadata["aggregate_version"]
    if (
        rules is None
        or _is_uuid(metadata["event_id"]) is None
        or record[rules[0]] != aggregate_id
        or not aggregate_id
        or len(aggregate_id) > _SURELY_SHORT
        or not EVENT_TIME_FLOOR <= metadata["occurred_at"] <= latest
        or (version is not None and not 1 <= version <= MAX_AGGREGATE_VERSION)
        or (rules[1] is not None and not rules[1](record))
    ):
        _explain(event, latest)


def _explain(event: DecodedEvent, latest: datetime) -> None:
    """Check every rule in turn; raise :class:`ContractViolationError` at the first broken."""
    record = event.record
    metadata = record["metadata"]
    event_type = event.event_type
    event_id = metadata["event_id"]
    if len(event_id) != 36 or _is_uuid(event_id) is None:
        raise ContractViolationError(
            event_type, "metadata.event_id", f"is not a UUID: {_shown(event_id)}"
        )
    aggregate_id = metadata["aggregate_id"]
    field = AGGREGATE_FIELD.get(event_type)
    if field is not None and record[field] != aggregate_id:
        raise ContractViolationError(
            event_type,
            "metadata.aggregate_id",
            f"is {_shown(aggregate_id)} but {field} is {_shown(record[field])}",
        )
    if not aggregate_id:
        raise ContractViolationError(event_type, "metadata.aggregate_id", "is empty")
    if len(aggregate_id) > _SURELY_SHORT and len(aggregate_id.encode()) > MAX_KEY_BYTES:
        raise ContractViolationError(
            event_type, "metadata.aggregate_id", f"is longer than {MAX_KEY_BYTES} bytes"
        )
    occurred_at = metadata["occurred_at"]
    if occurred_at < EVENT_TIME_FLOOR:
        raise ContractViolationError(
            event_type,
            "metadata.occurred_at",
            f"{occurred_at.isoformat()} is before {EVENT_TIME_FLOOR.date().isoformat()}",
        )
    if occurred_at > latest:
        raise ContractViolationError(
            event_type,
            "metadata.occurred_at",
            f"{occurred_at.isoformat()} is in the future "
            f"(now is {(latest - CLOCK_SKEW).isoformat()})",
        )
    version = metadata["aggregate_version"]
    if version is not None and not 1 <= version <= MAX_AGGREGATE_VERSION:
        raise ContractViolationError(
            event_type,
            "metadata.aggregate_version",
            f"{version} is outside 1..{MAX_AGGREGATE_VERSION}",
        )
    body = _BODY_RULES.get(event_type)
    if body is not None:
        body(event_type, record)


def _shown(value: str) -> str:
    return repr(value if len(value) <= 60 else value[:57] + "...")


def _metric(event_type: str, record: Mapping[str, Any]) -> None:
    value = record["value"]
    if not isfinite(value):
        raise ContractViolationError(event_type, "value", f"is {value}, not a finite number")


def _transaction(event_type: str, record: Mapping[str, Any]) -> None:
    amount: Decimal = record["amount"]
    if not -_AMOUNT_LIMIT < amount < _AMOUNT_LIMIT:
        raise ContractViolationError(event_type, "amount", f"{amount} does not fit decimal(18,4)")
    if amount < 0:
        raise ContractViolationError(
            event_type, "amount", f"{amount} is negative (a refund is status 'refunded')"
        )
    status = record["status"]
    if status not in TRANSACTION_STATUSES:
        raise ContractViolationError(
            event_type,
            "status",
            f"is {_shown(status)}, not one of {', '.join(sorted(TRANSACTION_STATUSES))}",
        )


def _image(event_type: str, record: Mapping[str, Any]) -> None:
    for i, label in enumerate(record["labels"]):
        confidence = label["confidence"]
        if not (isfinite(confidence) and 0 <= confidence <= 100):
            raise ContractViolationError(
                event_type, f"labels[{i}].confidence", f"is {confidence}, not a percentage"
            )


_BODY_RULES: dict[str, Callable[[str, Mapping[str, Any]], None]] = {
    "MetricRecorded": _metric,
    "TransactionRecorded": _transaction,
    "ImageLabeled": _image,
}


# The fast path's view of the body rules: whether a body keeps them, without the why.
def _metric_ok(record: Mapping[str, Any]) -> bool:
    return isfinite(record["value"])


def _transaction_ok(record: Mapping[str, Any]) -> bool:
    return 0 <= record["amount"] < _AMOUNT_LIMIT and record["status"] in TRANSACTION_STATUSES


def _image_ok(record: Mapping[str, Any]) -> bool:
    return all(isfinite(c := label["confidence"]) and 0 <= c <= 100 for label in record["labels"])


_BODY_OK: dict[str, Callable[[Mapping[str, Any]], bool]] = {
    "MetricRecorded": _metric_ok,
    "TransactionRecorded": _transaction_ok,
    "ImageLabeled": _image_ok,
}
# Per event type: the body field that is the aggregate id, and the body's fast check.
_RULES: dict[str, tuple[str, Callable[[Mapping[str, Any]], bool] | None]] = {
    event_type: (field, _BODY_OK.get(event_type)) for event_type, field in AGGREGATE_FIELD.items()
}
