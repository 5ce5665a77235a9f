"""What each event does to the DynamoDB read models, as write intents (pure).

Every event becomes exactly one write, built only from the event (never the
wall clock), so building it twice gives the same write and re-applying it is
idempotent:

* **Facts** (:class:`FactPut`, unconditional ``PutItem`` via ``BatchWriteItem``):
  written once per ``event_id``; a re-put is byte-for-byte the same item.

  - ``user_activities``: ``user_id`` + ``timestamp`` = ``<occurred_at>#<event_id>``
  - ``system_metrics``: ``metric_id`` = ``<source>#<metric_name>#<occurred_at>#<event_id>``
  - ``transactions``: ``transaction_id`` (a transaction is recorded once), with
    ``timestamp`` = ``<occurred_at>`` and ``user_id`` for ``UserTransactionsIndex``

  ``<occurred_at>`` is ISO 8601 UTC with milliseconds and ``Z``, so sort keys
  order by event time and the event id makes them unique. Facts on tables with
  a time to live expire ``occurred_at + FACT_TTL_DAYS`` (epoch seconds).

* **State** (:class:`ConditionalUpdate`, ``UpdateItem`` with a condition):

  - ``users``: applied only when newer than the stored ``aggregate_version``
    (``attribute_not_exists(user_id) OR aggregate_version < :v``); registration
    sets the whole profile, a profile update only its non-null fields.
  - ``image_analysis``: one item per ``image_key`` holding the latest labels by
    event time; ``label_version`` = ``<occurred_at>#<event_id>`` orders
    re-labellings (ties broken by event id) and must grow.

  A failed condition is a stale or duplicate event: a no-op, not a failure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from math import isfinite
from typing import Any, NamedTuple

from pipelines.codec import DecodedEvent
from pipelines.errors import InvalidEventError
from pipelines.settings import Settings, TableNames

AttributeValue = dict[str, Any]
Item = dict[str, AttributeValue]

_MAX_KEY_CHARS = 1024 // 4  # a key this short always fits DynamoDB's byte limits


class FactPut(NamedTuple):
    """An unconditional, idempotent put of an item keyed by its event."""

    table: str
    key: tuple[str, ...]  # the key attributes' values: unique per table and event
    item: Item


class ConditionalUpdate(NamedTuple):
    """An ``UpdateItem`` that applies only to newer state."""

    table: str
    key: Item
    update: str
    condition: str
    names: dict[str, str]
    values: Item
    version_attribute: str  # equal stored version = duplicate, greater = stale

    @property
    def version(self) -> AttributeValue:
        return self.values[":v"]


Write = FactPut | ConditionalUpdate


def iso_millis(moment: datetime) -> str:
    """``2026-11-01T00:00:50.363Z``: sortable as a string."""
    text = moment.isoformat(timespec="milliseconds")
    if text.endswith("+00:00"):
        return text[:-6] + "Z"
    raise ValueError(f"expected a UTC timestamp, got {text}")


def _s(value: str) -> AttributeValue:
    return {"S": value}


def _string_map(values: dict[str, str]) -> AttributeValue:
    return {"M": {k: {"S": v} for k, v in values.items()}}


def _key(event: DecodedEvent, field: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidEventError(f"{event.event_type}.{field} must be a non-empty string", b"")
    if len(value) > _MAX_KEY_CHARS and len(value.encode()) > 1024:
        raise InvalidEventError(f"{event.event_type}.{field} is longer than 1024 bytes", b"")
    return value


def _version(event: DecodedEvent, default: int | None) -> int:
    version = event.record["metadata"]["aggregate_version"]
    if version is None:
        if default is None:
            raise InvalidEventError(f"{event.event_type} has no aggregate_version", b"")
        return default
    if version < 1:
        raise InvalidEventError(f"{event.event_type} has aggregate_version {version}", b"")
    return int(version)


def _float(event: DecodedEvent, field: str, value: float, fmt: str = "r") -> AttributeValue:
    if not isfinite(value):
        raise InvalidEventError(f"{event.event_type}.{field} is {value}", b"")
    return {"N": format(value, fmt) if fmt != "r" else repr(value)}


def _update(
    table: str,
    key: Item,
    key_attribute: str,
    version_attribute: str,
    fields: dict[str, AttributeValue],
) -> ConditionalUpdate:
    """SET every field if the stored ``version_attribute`` is older than the field's value."""
    names = {"#k": key_attribute, "#v": version_attribute}
    values: Item = {}
    assignments = []
    for i, (name, value) in enumerate(fields.items()):
        if name == version_attribute:
            values[":v"] = value
            assignments.append("#v = :v")
        else:
            names[f"#{i}"] = name
            values[f":{i}"] = value
            assignments.append(f"#{i} = :{i}")
    return ConditionalUpdate(
        table,
        key,
        "SET " + ", ".join(assignments),
        "attribute_not_exists(#k) OR #v < :v",
        names,
        values,
        version_attribute,
    )


@dataclass(frozen=True, slots=True)
class Projections:
    """Builds the write each event makes, for one deployment's tables."""

    tables: TableNames
    ttl_attribute: str = "ttl"
    ttl_seconds: int = 90 * 86_400

    @classmethod
    def from_settings(cls, settings: Settings) -> Projections:
        return cls(settings.tables, settings.ttl_attribute, settings.fact_ttl_seconds)

    def write_for(self, event: DecodedEvent) -> Write:
        """The one write ``event`` makes; ``InvalidEventError`` if it cannot make one."""
        try:
            build = _BUILDERS[event.event_type]
        except KeyError:
            raise InvalidEventError(f"no projection for {event.event_type}", b"") from None
        return build(self, event)

    def _ttl(self, occurred_at: datetime) -> AttributeValue:
        return {"N": str(int(occurred_at.timestamp()) + self.ttl_seconds)}

    # --- state -------------------------------------------------------------------

    def _user_registered(self, event: DecodedEvent) -> Write:
        r = event.record
        meta = r["metadata"]
        at = _s(iso_millis(meta["occurred_at"]))
        fields = {
            "email": _s(r["email"]),
            "name": _s(r["name"]),
            "registered_at": at,
            "updated_at": at,
            "last_event_id": _s(event.event_id),
            "aggregate_version": {"N": str(_version(event, default=1))},
        }
        key = {"user_id": _s(_key(event, "user_id", r["user_id"]))}
        return _update(self.tables.users, key, "user_id", "aggregate_version", fields)

    def _user_profile_updated(self, event: DecodedEvent) -> Write:
        r = event.record
        meta = r["metadata"]
        fields: dict[str, AttributeValue] = {}
        for name in ("name", "email", "phone"):
            if r.get(name) is not None:
                fields[name] = _s(r[name])
        if r.get("preferences") is not None:
            fields["preferences"] = _string_map(r["preferences"])
        fields["updated_at"] = _s(iso_millis(meta["occurred_at"]))
        fields["last_event_id"] = _s(event.event_id)
        fields["aggregate_version"] = {"N": str(_version(event, default=None))}
        key = {"user_id": _s(_key(event, "user_id", r["user_id"]))}
        return _update(self.tables.users, key, "user_id", "aggregate_version", fields)

    def _image_labeled(self, event: DecodedEvent) -> Write:
        r = event.record
        at = iso_millis(r["metadata"]["occurred_at"])
        labels = [
            {"M": {"name": _s(label["name"]), "confidence": _float(event, "confidence", c, ".7g")}}
            for label in r["labels"]
            for c in (label["confidence"],)
        ]
        fields = {
            "bucket": _s(r["bucket"]),
            "labels": {"L": labels},
            "label_count": {"N": str(len(labels))},
            "labeled_at": _s(at),
            "event_id": _s(event.event_id),
            "label_version": _s(f"{at}#{event.event_id}"),
        }
        key = {"image_key": _s(_key(event, "key", r["key"]))}
        return _update(self.tables.image_analysis, key, "image_key", "label_version", fields)

    # --- facts -------------------------------------------------------------------

    def _user_activity_recorded(self, event: DecodedEvent) -> Write:
        r = event.record
        occurred_at = r["metadata"]["occurred_at"]
        at = iso_millis(occurred_at)
        event_id = event.event_id
        user_id = _key(event, "user_id", r["user_id"])
        sort_key = f"{at}#{event_id}"
        item: Item = {
            "user_id": {"S": user_id},
            "timestamp": {"S": sort_key},
            "event_id": {"S": event_id},
            "activity_type": {"S": r["activity_type"]},
            "occurred_at": {"S": at},
            "details": _string_map(r["details"]),
            self.ttl_attribute: self._ttl(occurred_at),
        }
        if r["session_id"] is not None:
            item["session_id"] = {"S": r["session_id"]}
        if r["ip_address"] is not None:
            item["ip_address"] = {"S": r["ip_address"]}
        if r["session_duration_ms"] is not None:
            item["session_duration_ms"] = {"N": str(r["session_duration_ms"])}
        return FactPut(self.tables.user_activities, (user_id, sort_key), item)

    def _metric_recorded(self, event: DecodedEvent) -> Write:
        r = event.record
        occurred_at = r["metadata"]["occurred_at"]
        at = iso_millis(occurred_at)
        event_id = event.event_id
        source = _key(event, "source", r["source"])
        metric_id = _key(event, "metric_id", f"{source}#{r['metric_name']}#{at}#{event_id}")
        item: Item = {
            "metric_id": {"S": metric_id},
            "source": {"S": source},
            "metric_name": {"S": r["metric_name"]},
            "value": _float(event, "value", r["value"]),
            "tags": _string_map(r["tags"]),
            "occurred_at": {"S": at},
            "event_id": {"S": event_id},
            self.ttl_attribute: self._ttl(occurred_at),
        }
        return FactPut(self.tables.system_metrics, (metric_id,), item)

    def _transaction_recorded(self, event: DecodedEvent) -> Write:
        r = event.record
        at = iso_millis(r["metadata"]["occurred_at"])
        transaction_id = _key(event, "transaction_id", r["transaction_id"])
        amount: Decimal = r["amount"]
        item: Item = {
            "transaction_id": {"S": transaction_id},
            "user_id": {"S": _key(event, "user_id", r["user_id"])},
            "timestamp": {"S": at},
            "amount": {"N": str(amount)},
            "currency": {"S": r["currency"]},
            "merchant": {"S": r["merchant"]},
            "category": {"S": r["category"]},
            "status": {"S": r["status"]},
            "event_id": {"S": event.event_id},
            "occurred_at": {"S": at},
        }
        return FactPut(self.tables.transactions, (transaction_id,), item)


_BUILDERS: dict[str, Callable[[Projections, DecodedEvent], Write]] = {
    "UserRegistered": Projections._user_registered,
    "UserProfileUpdated": Projections._user_profile_updated,
    "ImageLabeled": Projections._image_labeled,
    "UserActivityRecorded": Projections._user_activity_recorded,
    "MetricRecorded": Projections._metric_recorded,
    "TransactionRecorded": Projections._transaction_recorded,
}
