"""A DynamoDB item as a set of last-writer-wins registers, one per field (pure).

A user's profile is changed by partial updates (``UserProfileUpdated`` carries only the
fields that changed), and they may arrive in any order: a redelivery, a replay, a
re-sharded stream. Ordering the whole item by one ``aggregate_version`` loses fields: v1
registers, v3 renames, then v2 (a new phone) arrives and is skipped as stale, phone and all.
So each field is a register of its own:

* the item keeps, beside the plain attributes, a map ``field_versions`` of the version
  that last set each field (``{"name": 3, "phone": 2, ...}``);
* an event sets each field it carries only if that field's stored version is older, and
  the attributes of the latest version (``aggregate_version``, ``updated_at``,
  ``last_event_id``) only if it is newer than every version seen. So out-of-order partial
  updates never lose a field, the item ends the same in every arrival order, and a
  duplicate changes nothing.

Every field stays a plain attribute, so a reader's ``GetItem`` sees the profile as before.

**How it is written** (:class:`FieldMerge`, applied by
:meth:`pipelines.adapters.dynamo.DynamoWriter.merge`): one conditional ``UpdateItem`` per
event in the usual case, and a second only when events arrive out of order:

1. the first write assumes the common case, with no read: an update newer than the whole
   item (``aggregate_version < :v``) sets every field it carries; a registration expects
   no item yet (``attribute_not_exists``). One round trip.
2. If that condition fails, DynamoDB hands back the item as stored
   (``ReturnValuesOnConditionCheckFailure = ALL_OLD``): no read needed. The merge is
   planned against it: the fields whose stored version is older, and the latest-version
   attributes if the event is newer. Nothing left to set is a skip: a *duplicate* when
   this very version is stored (as the item's version or a field's), else *stale*.
3. The re-planned write is conditional on exactly what it was planned from: each field it
   sets still has the version read (``field_versions.f = :old``, or none), and the item's
   version is unchanged if it sets the latest-version attributes. Each register is a
   compare-and-set, all of them in one atomic write; a concurrent writer that got there
   first fails the condition, and step 2 repeats with what it wrote (a bounded number of
   times, then the record fails as transient and is delivered again).

So a retry (of a write that timed out but landed, or of a redelivered batch) finds its
own version stored and is a no-op. Items written before ``field_versions`` existed are
read as if every field they hold was set by their ``aggregate_version``, and get the map
on their next write.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipelines.adapters.dynamo import AttributeValue, ConditionalUpdate, Item, UpdateOutcome

VERSIONS_ATTRIBUTE = "field_versions"


class _Expression:
    """Builds one ``UpdateItem``'s expressions, naming only what they use."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.values: Item = {}
        self.assignments: list[str] = []
        self.conditions: list[str] = []

    def name(self, attribute: str) -> str:
        for placeholder, known in self.names.items():
            if known == attribute:
                return placeholder
        placeholder = f"#n{len(self.names)}"
        self.names[placeholder] = attribute
        return placeholder

    def value(self, value: AttributeValue, placeholder: str | None = None) -> str:
        placeholder = placeholder or f":x{len(self.values)}"
        self.values[placeholder] = value
        return placeholder

    def set(self, path: str, value: str) -> None:
        self.assignments.append(f"{path} = {value}")

    def build(self, table: str, key: Item, version_attribute: str) -> ConditionalUpdate:
        return ConditionalUpdate(
            table,
            key,
            "SET " + ", ".join(self.assignments),
            " AND ".join(self.conditions),
            self.names,
            self.values,
            version_attribute,
        )


@dataclass(frozen=True, slots=True)
class FieldMerge:
    """One event's fields merged into an item of per-field registers (see the module doc).

    ``fields`` are the registers the event carries, ``latest`` the attributes only the
    newest version sets; ``registers`` names every register field an item of this kind
    can hold (to read items written before ``field_versions``).
    """

    table: str
    key: Item
    version: int
    fields: dict[str, AttributeValue]
    latest: dict[str, AttributeValue]
    registers: tuple[str, ...]
    expect_new: bool = False  # the first write assumes no item yet (a registration)
    version_attribute: str = "aggregate_version"
    versions_attribute: str = VERSIONS_ATTRIBUTE

    @property
    def item(self) -> Item:
        """The item this event makes on its own (what DynamoDB's limits are checked on)."""
        return {**self.key, **self._create_values()}

    def first(self) -> ConditionalUpdate:
        return self._create() if self.expect_new else self._newest()

    def replan(self, stored: Item | None) -> ConditionalUpdate | UpdateOutcome:
        """The write over ``stored`` (``None``: no item), or why nothing of the event applies."""
        if stored is None:
            return self._create()
        stored_version = _int(stored.get(self.version_attribute))
        versions_map = stored.get(self.versions_attribute, {}).get("M")
        if versions_map is None:  # written before per-field versions: all at the item's
            versions = {f: stored_version for f in self.registers if f in stored}
        else:
            versions = {f: _int(v) for f, v in versions_map.items()}
        to_set = [f for f in self.fields if versions.get(f, 0) < self.version]
        newest = self.version > stored_version
        if not to_set and not newest:
            applied = stored_version == self.version or self.version in versions.values()
            return UpdateOutcome.DUPLICATE if applied else UpdateOutcome.STALE

        e = _Expression()
        fv = e.name(self.versions_attribute)
        for f in to_set:
            e.set(e.name(f), e.value(self.fields[f]))
        if versions_map is None:
            merged = {f: {"N": str(n)} for f, n in versions.items()}
            merged.update((f, {"N": str(self.version)}) for f in to_set)
            e.set(fv, e.value({"M": merged}))
            e.conditions.append(f"attribute_exists({e.name(_key_attribute(self.key))})")
            e.conditions.append(f"attribute_not_exists({fv})")
        else:
            e.conditions.append(f"attribute_exists({fv})")
            for f in to_set:
                path = f"{fv}.{e.name(f)}"
                e.set(path, e.value({"N": str(self.version)}, ":v"))
                if f in versions:
                    e.conditions.append(f"{path} = {e.value({'N': str(versions[f])})}")
                else:
                    e.conditions.append(f"attribute_not_exists({path})")
        if newest:
            for name, value in self.latest.items():
                e.set(e.name(name), e.value(value))
            e.set(e.name(self.version_attribute), e.value({"N": str(self.version)}, ":v"))
        if newest or versions_map is None:  # the item's version is part of what was read
            av = e.name(self.version_attribute)
            if self.version_attribute in stored:
                e.conditions.append(f"{av} = {e.value({'N': str(stored_version)})}")
            else:
                e.conditions.append(f"attribute_not_exists({av})")
        return e.build(self.table, self.key, self.version_attribute)

    # --- the writes tried without reading -------------------------------------------

    def _create_values(self) -> Item:
        version = {"N": str(self.version)}
        values: Item = dict(self.fields)
        values[self.versions_attribute] = {"M": {f: version for f in self.fields}}
        values.update(self.latest)
        values[self.version_attribute] = version
        return values

    def _create(self) -> ConditionalUpdate:
        """No item yet: set everything the event carries."""
        e = _Expression()
        for name, value in self._create_values().items():
            placeholder = ":v" if name == self.version_attribute else None
            e.set(e.name(name), e.value(value, placeholder))
        e.conditions.append(f"attribute_not_exists({e.name(_key_attribute(self.key))})")
        return e.build(self.table, self.key, self.version_attribute)

    def _newest(self) -> ConditionalUpdate:
        """Newer than the whole item, so newer than each of its fields: set them all."""
        e = _Expression()
        v = e.value({"N": str(self.version)}, ":v")
        fv = e.name(self.versions_attribute)
        for name, value in self.fields.items():
            field_name = e.name(name)
            e.set(field_name, e.value(value))
            e.set(f"{fv}.{field_name}", v)
        for name, value in self.latest.items():
            e.set(e.name(name), e.value(value))
        av = e.name(self.version_attribute)
        e.set(av, v)
        e.conditions.append(f"{av} < {v} AND attribute_exists({fv})")
        return e.build(self.table, self.key, self.version_attribute)


def _key_attribute(key: Item) -> str:
    return next(iter(key))


def _int(value: AttributeValue | None) -> int:
    if not value or "N" not in value:
        return 0
    return int(value["N"])
