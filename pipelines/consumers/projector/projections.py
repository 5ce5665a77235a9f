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
from decimal import Decimal
from functools import lru_cache
from math import isfinite

from pipelines.adapters.dynamo import AttributeValue, ConditionalUpdate, FactPut, Item, Write
from pipelines.consumers.config import ProjectorSettings, TableNames
from pipelines.contract.codec import DecodedEvent
from pipelines.contract.timestamps import iso_millis
from pipelines.errors import InvalidEventError

__all__ = ["ConditionalUpdate", "FactPut", "Projections", "Write", "iso_millis"]

_MAX_KEY_CHARS = 1024 // 4  # a key this short always fits DynamoDB's byte limits


def _invalid(event: DecodedEvent, problem: str) -> InvalidEventError:
    # the projector attaches the record's bytes when it quarantines the event
    return InvalidEventError(f"{event.event_type}: {problem}", b"")


def _check_key(event: DecodedEvent, field: str, value: str) -> str:
    if not value:
        raise _invalid(event, f"{field} must not be empty")
    if len(value) > _MAX_KEY_CHARS and len(value.encode()) > 1024:
        raise _invalid(event, f"{field} is longer than 1024 bytes")
    return value


def _version(event: DecodedEvent, default: int | None) -> AttributeValue:
    version = event.record["metadata"]["aggregate_version"]
    if version is None:
        if default is None:
            raise _invalid(event, "no aggregate_version")
        version = default
    if version < 1:
        raise _invalid(event, f"aggregate_version {version} is not positive")
    return {"N": str(version)}


def _number(event: DecodedEvent, field: str, value: float, text: str) -> AttributeValue:
    if not isfinite(value):
        raise _invalid(event, f"{field} is {value}")
    return {"N": text}


@lru_cache(maxsize=64)
def _update_template(
    key_attribute: str, version_attribute: str, fields: tuple[str, ...]
) -> tuple[str, dict[str, str]]:
    """``SET #0 = :0, ..., #v = :v`` and its attribute names, for these fields."""
    names = {"#k": key_attribute, "#v": version_attribute}
    assignments = []
    for i, name in enumerate(fields):
        names[f"#{i}"] = name
        assignments.append(f"#{i} = :{i}")
    assignments.append("#v = :v")
    return "SET " + ", ".join(assignments), names


_CONDITION = "attribute_not_exists(#k) OR #v < :v"


def _update(
    table: str,
    key: Item,
    key_attribute: str,
    version_attribute: str,
    fields: tuple[str, ...],
    values: list[AttributeValue],
    version: AttributeValue,
) -> ConditionalUpdate:
    """SET ``fields`` to ``values`` if the stored ``version_attribute`` is below ``version``."""
    expression, names = _update_template(key_attribute, version_attribute, fields)
    placeholders = dict(zip(_PLACEHOLDERS, values, strict=False))
    placeholders[":v"] = version
    return ConditionalUpdate(
        table, key, expression, _CONDITION, names, placeholders, version_attribute
    )


_PLACEHOLDERS = tuple(f":{i}" for i in range(16))
_REGISTERED = ("email", "name", "registered_at", "updated_at", "last_event_id")
_IMAGE = ("bucket", "labels", "label_count", "labeled_at", "event_id")


@dataclass(frozen=True, slots=True)
class Projections:
    """Builds the write each event makes, for one deployment's tables."""

    tables: TableNames
    ttl_attribute: str = "ttl"
    ttl_seconds: int = 90 * 86_400

    @classmethod
    def from_settings(cls, settings: ProjectorSettings) -> Projections:
        return cls(settings.tables, settings.ttl_attribute, settings.fact_ttl_seconds)

    def write_for(self, event: DecodedEvent) -> Write:
        """The one write ``event`` makes; ``InvalidEventError`` if it cannot make one."""
        build = _BUILDERS.get(event.event_type)
        if build is None:
            raise _invalid(event, "no projection for this event type")
        return build(self, event)

    # --- state -------------------------------------------------------------------

    def _user_registered(self, event: DecodedEvent) -> Write:
        r = event.record
        meta = r["metadata"]
        at = {"S": iso_millis(meta["occurred_at"])}
        values = [{"S": r["email"]}, {"S": r["name"]}, at, at, {"S": str(meta["event_id"])}]
        key = {"user_id": {"S": _check_key(event, "user_id", r["user_id"])}}
        version = _version(event, default=1)
        return _update(
            self.tables.users, key, "user_id", "aggregate_version", _REGISTERED, values, version
        )

    def _user_profile_updated(self, event: DecodedEvent) -> Write:
        r = event.record
        meta = r["metadata"]
        fields: list[str] = []
        values: list[AttributeValue] = []
        for name in ("name", "email", "phone"):
            if r[name] is not None:
                fields.append(name)
                values.append({"S": r[name]})
        if r["preferences"] is not None:
            fields.append("preferences")
            values.append({"M": {k: {"S": v} for k, v in r["preferences"].items()}})
        fields += ("updated_at", "last_event_id")
        values += ({"S": iso_millis(meta["occurred_at"])}, {"S": str(meta["event_id"])})
        key = {"user_id": {"S": _check_key(event, "user_id", r["user_id"])}}
        version = _version(event, default=None)
        return _update(
            self.tables.users, key, "user_id", "aggregate_version", tuple(fields), values, version
        )

    def _image_labeled(self, event: DecodedEvent) -> Write:
        r = event.record
        meta = r["metadata"]
        at = iso_millis(meta["occurred_at"])
        event_id = str(meta["event_id"])
        labels = []
        for label in r["labels"]:
            confidence = label["confidence"]
            text = f"{confidence:.7g}"  # Avro float: 7 significant digits, no float noise
            labels.append(
                {
                    "M": {
                        "name": {"S": label["name"]},
                        "confidence": _number(event, "confidence", confidence, text),
                    }
                }
            )
        values = [
            {"S": r["bucket"]},
            {"L": labels},
            {"N": str(len(labels))},
            {"S": at},
            {"S": event_id},
        ]
        key = {"image_key": {"S": _check_key(event, "key", r["key"])}}
        version = {"S": f"{at}#{event_id}"}
        return _update(
            self.tables.image_analysis, key, "image_key", "label_version", _IMAGE, values, version
        )

    # --- facts -------------------------------------------------------------------

    def _user_activity_recorded(self, event: DecodedEvent) -> Write:
        r = event.record
        meta = r["metadata"]
        occurred_at = meta["occurred_at"]
        at = iso_millis(occurred_at)
        event_id = str(meta["event_id"])
        user_id = r["user_id"] or _check_key(event, "user_id", "")
        sort_key = f"{at}#{event_id}"
        item: Item = {
            "user_id": {"S": user_id},
            "timestamp": {"S": sort_key},
            "event_id": {"S": event_id},
            "activity_type": {"S": r["activity_type"]},
            "occurred_at": {"S": at},
            "details": {"M": {k: {"S": v} for k, v in r["details"].items()}},
            self.ttl_attribute: {"N": str(int(occurred_at.timestamp()) + self.ttl_seconds)},
        }
        if r["session_id"] is not None:
            item["session_id"] = {"S": r["session_id"]}
        if r["ip_address"] is not None:
            item["ip_address"] = {"S": r["ip_address"]}
        if r["session_duration_ms"] is not None:
            item["session_duration_ms"] = {"N": str(r["session_duration_ms"])}
        if len(user_id) > _MAX_KEY_CHARS:
            _check_key(event, "user_id", user_id)
        return FactPut(self.tables.user_activities, (user_id, sort_key), item)

    def _metric_recorded(self, event: DecodedEvent) -> Write:
        r = event.record
        meta = r["metadata"]
        occurred_at = meta["occurred_at"]
        at = iso_millis(occurred_at)
        event_id = str(meta["event_id"])
        source = r["source"] or _check_key(event, "source", "")
        metric_id = f"{source}#{r['metric_name']}#{at}#{event_id}"
        value = r["value"]
        item: Item = {
            "metric_id": {"S": metric_id},
            "source": {"S": source},
            "metric_name": {"S": r["metric_name"]},
            "value": _number(event, "value", value, repr(value)),
            "tags": {"M": {k: {"S": v} for k, v in r["tags"].items()}},
            "occurred_at": {"S": at},
            "event_id": {"S": event_id},
            self.ttl_attribute: {"N": str(int(occurred_at.timestamp()) + self.ttl_seconds)},
        }
        if len(metric_id) > _MAX_KEY_CHARS:
            _check_key(event, "metric_id", metric_id)
        return FactPut(self.tables.system_metrics, (metric_id,), item)

    def _transaction_recorded(self, event: DecodedEvent) -> Write:
        r = event.record
        meta = r["metadata"]
        at = iso_millis(meta["occurred_at"])
        transaction_id = r["transaction_id"] or _check_key(event, "transaction_id", "")
        user_id = r["user_id"] or _check_key(event, "user_id", "")
        amount: Decimal = r["amount"]
        item: Item = {
            "transaction_id": {"S": transaction_id},
            "user_id": {"S": user_id},
            "timestamp": {"S": at},
            "amount": {"N": str(amount)},
            "currency": {"S": r["currency"]},
            "merchant": {"S": r["merchant"]},
            "category": {"S": r["category"]},
            "status": {"S": r["status"]},
            "event_id": {"S": str(meta["event_id"])},
            "occurred_at": {"S": at},
        }
        if len(transaction_id) > _MAX_KEY_CHARS or len(user_id) > _MAX_KEY_CHARS:
            _check_key(event, "transaction_id", transaction_id)
            _check_key(event, "user_id", user_id)
        return FactPut(self.tables.transactions, (transaction_id,), item)


_BUILDERS: dict[str, Callable[[Projections, DecodedEvent], Write]] = {
    "UserRegistered": Projections._user_registered,
    "UserProfileUpdated": Projections._user_profile_updated,
    "ImageLabeled": Projections._image_labeled,
    "UserActivityRecorded": Projections._user_activity_recorded,
    "MetricRecorded": Projections._metric_recorded,
    "TransactionRecorded": Projections._transaction_recorded,
}
