"""Per-field registers: what a merge writes over a stored item, and when it writes nothing."""

from __future__ import annotations

from typing import Any

from pipelines.adapters.dynamo import ConditionalUpdate, UpdateOutcome
from pipelines.consumers.projector.registers import FieldMerge

REGISTERS = ("email", "name", "phone")


def _merge(version: int, **fields: str) -> FieldMerge:
    return FieldMerge(
        "users",
        {"user_id": {"S": "user-1"}},
        version,
        fields={name: {"S": value} for name, value in fields.items()},
        latest={"updated_at": {"S": f"t{version}"}},
        registers=REGISTERS,
    )


def _stored(version: int, **field_versions: int) -> dict[str, Any]:
    item: dict[str, Any] = {
        "user_id": {"S": "user-1"},
        "aggregate_version": {"N": str(version)},
        "field_versions": {"M": {f: {"N": str(v)} for f, v in field_versions.items()}},
    }
    item.update({f: {"S": f"{f} v{v}"} for f, v in field_versions.items()})
    return item


def _sets(update: ConditionalUpdate) -> set[str]:
    """The top-level attributes an update's SET assigns."""
    targets = (a.split(" = ")[0] for a in update.update.removeprefix("SET ").split(", "))
    return {update.names[t] for t in targets if "." not in t}


def test_a_merge_over_a_newer_item_sets_only_its_older_fields() -> None:
    write = _merge(2, name="B", phone="555").replan(_stored(3, name=3, email=1))
    assert isinstance(write, ConditionalUpdate)
    assert _sets(write) == {"phone"}  # not the name (v3), nor the latest-version attributes


def test_a_merge_newer_than_the_item_also_sets_its_version_and_latest_attributes() -> None:
    write = _merge(4, name="D").replan(_stored(3, name=3, phone=2))
    assert isinstance(write, ConditionalUpdate)
    assert _sets(write) == {"name", "updated_at", "aggregate_version"}


def test_a_merge_whose_every_field_is_newer_is_stale() -> None:
    assert _merge(2, name="B").replan(_stored(3, name=3)) is UpdateOutcome.STALE


def test_a_merge_of_a_version_already_stored_is_a_duplicate() -> None:
    # v2 set the phone and the name; v3 renamed since: v2 again is a duplicate, not stale
    stored = _stored(3, name=3, phone=2)
    assert _merge(2, name="B", phone="555").replan(stored) is UpdateOutcome.DUPLICATE
    assert _merge(3, name="C").replan(stored) is UpdateOutcome.DUPLICATE


def test_an_item_without_field_versions_counts_its_fields_at_its_version() -> None:
    legacy = {
        "user_id": {"S": "user-1"},
        "name": {"S": "Old"},
        "aggregate_version": {"N": "5"},
    }
    assert _merge(4, name="D").replan(legacy) is UpdateOutcome.STALE
    write = _merge(4, name="D", phone="555").replan(legacy)
    assert isinstance(write, ConditionalUpdate)
    assert _sets(write) == {"phone", "field_versions"}
    versions = next(v for v in write.values.values() if "M" in v)["M"]
    assert versions == {"name": {"N": "5"}, "phone": {"N": "4"}}


def test_no_item_means_the_merge_creates_it() -> None:
    write = _merge(2, phone="555").replan(None)
    assert isinstance(write, ConditionalUpdate)
    assert write.condition.startswith("attribute_not_exists(")
    assert _sets(write) == {"phone", "field_versions", "updated_at", "aggregate_version"}
