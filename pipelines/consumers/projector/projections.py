"""What each event does to the DynamoDB read models, as write intents (pure).

Every event becomes exactly one write, built only from the event (never the
wall clock), so building it twice gives the same write and re-applying it is
idempotent:

* **Facts** (:class:`FactPut`, unconditional ``PutItem`` via ``BatchWriteItem``):
  written once per ``event_id``; a re-put is byte-for-byte the same item.

  - ``user_activities``: ``user_id`` + ``timestamp`` = ``<occurred_at>#<event_id>``
  - ``system_metrics``: ``metric_id`` = ``<source>#<metric_name>#<occurred_at>#<event_id>``

  ``<occurred_at>`` is ISO 8601 UTC with milliseconds and ``Z``, so sort keys
  order by event time and the event id makes them unique. Facts on tables with
  a time to live expire ``occurred_at + FACT_TTL_DAYS`` (epoch seconds).

* **State** (conditional ``UpdateItem``; a failed condition is a stale or duplicate
  event: a no-op, not a failure):

  - ``users`` (:class:`~.registers.FieldMerge`): every profile field is a register of
    its own, set only by a newer version than the one that last set it (the versions
    are kept in ``field_versions``), so partial updates arriving in any order never
    lose a field; ``aggregate_version``, ``updated_at`` and ``last_event_id`` are those
    of the highest version seen. Registration carries ``email``, ``name`` and
    ``registered_at``, a profile update its non-null fields. See :mod:`.registers`.
  - ``transactions`` (:class:`ConditionalUpdate`): one item per ``transaction_id``
    holding the event latest by (``occurred_at``, ``aggregate_version``, ``event_id``):
    ``transaction_version`` = ``<occurred_at>#<aggregate_version, 19 digits>#<event_id>``
    must grow, so "pending" then "completed" ends "completed" in either arrival order.
    With ``timestamp`` = ``<occurred_at>`` and ``user_id`` for ``UserTransactionsIndex``.
  - ``image_analysis`` (:class:`ConditionalUpdate`): one item per ``image_key``
    holding the latest labels by event time; ``label_version`` =
    ``<occurred_at>#<event_id>`` orders re-labellings (ties broken by event id) and
    must grow. A labelling replaces the whole item, so one version per item suffices.

An event whose write DynamoDB could never take is :class:`~pipelines.errors.InvalidEventError`
(poison, quarantined) here, before anything is written: an empty key, a key over
DynamoDB's byte limit (partition key 2,048, sort key 1,024, index keys included), an item
over 400 KB (:func:`~pipelines.adapters.dynamo.item_size`), a number DynamoDB cannot store.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from math import isfinite

from pipelines.adapters.dynamo import (
    MAX_ITEM_BYTES,
    MAX_PARTITION_KEY_BYTES,
    MAX_SORT_KEY_BYTES,
    AttributeValue,
    ConditionalUpdate,
    FactPut,
    Item,
    attribute_size,
    item_size,
)
from pipelines.consumers.config import ProjectorSettings, TableNames
from pipelines.consumers.projector.registers import FieldMerge
from pipelines.contract.codec import DecodedEvent
from pipelines.contract.timestamps import iso_millis
from pipelines.errors import InvalidEventError

__all__ = [
    "ConditionalUpdate",
    "FactPut",
    "FieldMerge",
    "Projections",
    "StateWrite",
    "Write",
    "iso_millis",
    "written_item",
]

StateWrite = ConditionalUpdate | FieldMerge
Write = FactPut | StateWrite

# How a message names a key attribute, "partition" or "sort", and DynamoDB's byte limit.
KeyLimit = tuple[str, str, int]
_USER_ID: KeyLimit = ("user_id", "partition", MAX_PARTITION_KEY_BYTES)
_ACTIVITY_TIMESTAMP: KeyLimit = (
    "timestamp (<occurred_at>#<event_id>)",
    "sort",
    MAX_SORT_KEY_BYTES,
)
_METRIC_ID: KeyLimit = (
    "metric_id (<source>#<metric_name>#<occurred_at>#<event_id>)",
    "partition",
    MAX_PARTITION_KEY_BYTES,
)
_TRANSACTION_ID: KeyLimit = ("transaction_id", "partition", MAX_PARTITION_KEY_BYTES)
_TRANSACTION_USER_ID: KeyLimit = (
    "user_id (UserTransactionsIndex)",
    "partition",
    MAX_PARTITION_KEY_BYTES,
)
_IMAGE_KEY: KeyLimit = ("image_key (key)", "partition", MAX_PARTITION_KEY_BYTES)
_VERSION_DIGITS = 19  # aggregate_version in transaction_version: any Avro long

# An item is at most 8 times its event's bytes on the wire plus 4 KiB: a string of the
# event appears at most three times in its item (an event id in a key, in event_id and
# in transaction_version), a label grows from at least 5 bytes on the wire to at most
# 25 + its name in the item, a map entry does not grow, a number is at most 11 bytes,
# and the attribute names, timestamps and versions an item adds are under 4 KiB. So an
# event up to this size on the wire always fits, and its item's bytes need not be counted
# (tests/unit/test_projections.py holds the projections to it).
WIRE_BYTES_ALWAYS_FIT = (MAX_ITEM_BYTES - 4096) // 8


def _invalid(event: DecodedEvent, problem: str) -> InvalidEventError:
    # the projector attaches the record's bytes when it quarantines the event
    return InvalidEventError(f"{event.event_type}: {problem}", b"")


def _check_keys(event: DecodedEvent, keys: tuple[tuple[str, KeyLimit], ...]) -> None:
    """Raise ``InvalidEventError`` naming a key attribute DynamoDB would refuse."""
    for text, (label, role, limit) in keys:
        if not text:
            raise _invalid(event, f"{label} must not be empty")
        if len(text) > limit // 4 and (size := len(text.encode())) > limit:
            raise _invalid(
                event,
                f"{label} is {size} bytes, over DynamoDB's {limit}-byte {role} key limit",
            )


def _check_size(event: DecodedEvent, item: Item) -> None:
    """Raise ``InvalidEventError`` if ``item`` is over DynamoDB's item size limit."""
    size = item_size(item)
    if size > MAX_ITEM_BYTES:
        sizes = {name: len(name.encode()) + attribute_size(v) for name, v in item.items()}
        largest = max(sizes, key=sizes.__getitem__)
        raise _invalid(
            event,
            f"the item is {size} bytes, over DynamoDB's 400 KB item size limit "
            f"({MAX_ITEM_BYTES} bytes); its largest attribute is {largest} "
            f"({sizes[largest]} bytes)",
        )


def _version(event: DecodedEvent, default: int | None) -> int:
    version = event.record["metadata"]["aggregate_version"]
    if version is None:
        if default is None:
            raise _invalid(event, "no aggregate_version")
        version = default
    if version < 1:
        raise _invalid(event, f"aggregate_version {version} is not positive")
    return int(version)


def _number(event: DecodedEvent, field: str, value: float, text: str) -> AttributeValue:
    # DynamoDB stores magnitudes from 1E-130 to below 1E+126, and zero
    if not isfinite(value) or (value != 0 and not 1e-130 <= abs(value) < 1e126):
        raise _invalid(event, f"{field} is {value}, which DynamoDB cannot store as a number")
    return {"N": text}


def _decimal(event: DecodedEvent, field: str, value: Decimal) -> AttributeValue:
    if not value.is_finite() or (
        value != 0
        and not (-130 <= value.adjusted() <= 125 and len(value.normalize().as_tuple().digits) <= 38)
    ):
        raise _invalid(event, f"{field} is {value}, which DynamoDB cannot store as a number")
    return {"N": str(value)}


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
    version_attribute: str,
    fields: tuple[str, ...],
    values: list[AttributeValue],
    version: AttributeValue,
    condition: str = _CONDITION,
) -> ConditionalUpdate:
    """SET ``fields`` to ``values`` if the stored ``version_attribute`` is below ``version``."""
    (key_attribute,) = key
    expression, names = _update_template(key_attribute, version_attribute, fields)
    placeholders = dict(zip(_PLACEHOLDERS, values, strict=False))
    placeholders[":v"] = version
    return ConditionalUpdate(
        table, key, expression, condition, names, placeholders, version_attribute
    )


def written_item(write: Write) -> Item:
    """The item ``write`` makes on an empty table (what DynamoDB's limits are checked on)."""
    if isinstance(write, FactPut):
        return write.item
    if isinstance(write, FieldMerge):
        return write.item
    # ``_update`` names the attribute of value ``:x`` by ``#x`` (``:v`` and ``#v`` included).
    item = dict(write.key)
    for placeholder, value in write.values.items():
        item[write.names["#" + placeholder[1:]]] = value
    return item


_PLACEHOLDERS = tuple(f":{i}" for i in range(16))
_REGISTERS = ("email", "name", "phone", "preferences", "registered_at")
_IMAGE = ("bucket", "labels", "label_count", "labeled_at", "event_id")
_TRANSACTION = (
    "user_id",
    "timestamp",
    "amount",
    "currency",
    "merchant",
    "category",
    "status",
    "event_id",
    "occurred_at",
)
# Newer by transaction_version; an item written before it existed yields to an event no
# older by occurred_at (its only order there is).
_AT = _TRANSACTION.index("occurred_at")
_TRANSACTION_CONDITION = f"{_CONDITION} OR (attribute_not_exists(#v) AND #{_AT} <= :{_AT})"


@dataclass(frozen=True, slots=True)
class Projections:
    """Builds the write each event makes, for one deployment's tables."""

    tables: TableNames
    ttl_attribute: str = "ttl"
    ttl_seconds: int = 90 * 86_400

    @classmethod
    def from_settings(cls, settings: ProjectorSettings) -> Projections:
        return cls(settings.tables, settings.ttl_attribute, settings.fact_ttl_seconds)

    def write_for(self, event: DecodedEvent, wire_size: int | None = None) -> Write:
        """The one write ``event`` makes; ``InvalidEventError`` if it cannot make one.

        ``wire_size`` (the event's bytes as they arrived), when given and at most
        :data:`WIRE_BYTES_ALWAYS_FIT`, spares counting the item's bytes.
        """
        build = _BUILDERS.get(event.event_type)
        if build is None:
            raise _invalid(event, "no projection for this event type")
        return build(self, event, wire_size is None or wire_size > WIRE_BYTES_ALWAYS_FIT)

    # --- state -------------------------------------------------------------------

    def _user_registered(self, event: DecodedEvent, count_bytes: bool) -> Write:
        r = event.record
        meta = r["metadata"]
        at = {"S": iso_millis(meta["occurred_at"])}
        merge = FieldMerge(
            self.tables.users,
            {"user_id": {"S": r["user_id"]}},
            _version(event, default=1),
            fields={"email": {"S": r["email"]}, "name": {"S": r["name"]}, "registered_at": at},
            latest={"updated_at": at, "last_event_id": {"S": str(meta["event_id"])}},
            registers=_REGISTERS,
            expect_new=True,
        )
        _check_keys(event, ((r["user_id"], _USER_ID),))
        if count_bytes:
            _check_size(event, merge.item)
        return merge

    def _user_profile_updated(self, event: DecodedEvent, count_bytes: bool) -> Write:
        r = event.record
        meta = r["metadata"]
        fields: Item = {}
        for name in ("name", "email", "phone"):
            if r[name] is not None:
                fields[name] = {"S": r[name]}
        if r["preferences"] is not None:
            fields["preferences"] = {"M": {k: {"S": v} for k, v in r["preferences"].items()}}
        merge = FieldMerge(
            self.tables.users,
            {"user_id": {"S": r["user_id"]}},
            _version(event, default=None),
            fields=fields,
            latest={
                "updated_at": {"S": iso_millis(meta["occurred_at"])},
                "last_event_id": {"S": str(meta["event_id"])},
            },
            registers=_REGISTERS,
        )
        _check_keys(event, ((r["user_id"], _USER_ID),))
        if count_bytes:
            _check_size(event, merge.item)
        return merge

    def _transaction_recorded(self, event: DecodedEvent, count_bytes: bool) -> Write:
        r = event.record
        meta = r["metadata"]
        at = iso_millis(meta["occurred_at"])
        event_id = str(meta["event_id"])
        version = meta["aggregate_version"] or 0
        if version < 0:  # zero-padded text orders only what is not negative
            raise _invalid(event, f"aggregate_version {version} is negative")
        values = [
            {"S": r["user_id"]},
            {"S": at},
            _decimal(event, "amount", r["amount"]),
            {"S": r["currency"]},
            {"S": r["merchant"]},
            {"S": r["category"]},
            {"S": r["status"]},
            {"S": event_id},
            {"S": at},
        ]
        update = _update(
            self.tables.transactions,
            {"transaction_id": {"S": r["transaction_id"]}},
            "transaction_version",
            _TRANSACTION,
            values,
            {"S": f"{at}#{version:0{_VERSION_DIGITS}d}#{event_id}"},
            _TRANSACTION_CONDITION,
        )
        _check_keys(
            event,
            ((r["transaction_id"], _TRANSACTION_ID), (r["user_id"], _TRANSACTION_USER_ID)),
        )
        if count_bytes:
            _check_size(event, written_item(update))
        return update

    def _image_labeled(self, event: DecodedEvent, count_bytes: bool) -> Write:
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
        update = _update(
            self.tables.image_analysis,
            {"image_key": {"S": r["key"]}},
            "label_version",
            _IMAGE,
            values,
            {"S": f"{at}#{event_id}"},
        )
        _check_keys(event, ((r["key"], _IMAGE_KEY),))
        if count_bytes:
            _check_size(event, written_item(update))
        return update

    # --- facts -------------------------------------------------------------------

    def _user_activity_recorded(self, event: DecodedEvent, count_bytes: bool) -> Write:
        r = event.record
        meta = r["metadata"]
        occurred_at = meta["occurred_at"]
        at = iso_millis(occurred_at)
        event_id = str(meta["event_id"])
        user_id = r["user_id"]
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
        _check_keys(event, ((user_id, _USER_ID), (sort_key, _ACTIVITY_TIMESTAMP)))
        if count_bytes:
            _check_size(event, item)
        return FactPut(self.tables.user_activities, (user_id, sort_key), item)

    def _metric_recorded(self, event: DecodedEvent, count_bytes: bool) -> Write:
        r = event.record
        meta = r["metadata"]
        occurred_at = meta["occurred_at"]
        at = iso_millis(occurred_at)
        event_id = str(meta["event_id"])
        source = r["source"]
        if not source:
            raise _invalid(event, "source must not be empty")
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
        _check_keys(event, ((metric_id, _METRIC_ID),))
        if count_bytes:
            _check_size(event, item)
        return FactPut(self.tables.system_metrics, (metric_id,), item)


_BUILDERS: dict[str, Callable[[Projections, DecodedEvent, bool], Write]] = {
    "UserRegistered": Projections._user_registered,
    "UserProfileUpdated": Projections._user_profile_updated,
    "ImageLabeled": Projections._image_labeled,
    "UserActivityRecorded": Projections._user_activity_recorded,
    "MetricRecorded": Projections._metric_recorded,
    "TransactionRecorded": Projections._transaction_recorded,
}
