"""The contract only grows: every event ever written stays readable."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from pipelines.contract.codec import Codec
from pipelines.contract.schemas import EVENT_TYPES, SchemaRegistry, check_can_read, schemas_dir
from pipelines.errors import SchemaCompatibilityError


@pytest.fixture(scope="module")
def registry() -> SchemaRegistry:
    return SchemaRegistry(schemas_dir())


def test_every_current_schema_is_released(registry: SchemaRegistry) -> None:
    assert registry.unreleased() == [], (
        "a schema changed without a new version: run `pipeline schemas release`"
    )


def test_released_versions_are_never_edited(registry: SchemaRegistry) -> None:
    pins = registry.pinned()
    for event_type in EVENT_TYPES:
        versions = registry.history[event_type]
        assert versions, f"{event_type} has no released version"
        assert [v.version for v in versions] == list(range(1, len(versions) + 1))
        for v in versions:
            digest = hashlib.sha256(registry.history_file(v).read_bytes()).hexdigest()
            assert pins[(event_type, v.version)] == (v.fingerprint_hex, digest), (
                f"schemas/history/{event_type}/v{v.version}.avsc no longer matches its pin"
            )


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_current_schema_reads_every_historical_version(
    registry: SchemaRegistry, event_type: str
) -> None:
    for old in registry.history[event_type]:
        check_can_read(registry.current[event_type], old, samples=200)


def _copy_schemas(tmp_path: Path) -> Path:
    root = tmp_path / "schemas"
    shutil.copytree(schemas_dir(), root)
    return root


def _add_field(root: Path, event_type: str, field: dict[str, object]) -> None:
    path = root / f"{event_type}.avsc"
    schema = json.loads(path.read_text())
    schema["fields"].append(field)
    path.write_text(json.dumps(schema, indent=2))


def test_a_new_field_without_a_default_is_rejected(tmp_path: Path) -> None:
    root = _copy_schemas(tmp_path)
    _add_field(root, "MetricRecorded", {"name": "unit", "type": "string"})
    registry = SchemaRegistry(root)
    with pytest.raises(SchemaCompatibilityError, match="'unit' has no default"):
        registry.release()
    assert not (root / "history" / "MetricRecorded" / "v2.avsc").exists()


def test_a_type_change_that_cannot_be_resolved_is_rejected(tmp_path: Path) -> None:
    root = _copy_schemas(tmp_path)
    path = root / "MetricRecorded.avsc"
    schema = json.loads(path.read_text())
    for field in schema["fields"]:
        if field["name"] == "value":
            field["type"] = "int"  # double cannot be read as int
    path.write_text(json.dumps(schema))
    with pytest.raises(SchemaCompatibilityError, match="cannot read"):
        SchemaRegistry(root).release()


def test_a_compatible_change_is_released_and_old_events_still_decode(tmp_path: Path) -> None:
    root = _copy_schemas(tmp_path)
    old_registry = SchemaRegistry(root)
    old_codec = Codec(old_registry)
    from pipelines.contract.events import new_event

    event = new_event(
        "MetricRecorded",
        {"metric_name": "cpu_usage", "value": 12.5, "source": "h1", "tags": {}},
        producer="t",
    )
    old_wire = old_codec.encode(event)

    _add_field(
        root, "MetricRecorded", {"name": "unit", "type": ["null", "string"], "default": None}
    )
    released = SchemaRegistry(root).release()
    assert [(v.event_type, v.version) for v in released] == [("MetricRecorded", 2)]

    new_registry = SchemaRegistry(root)
    assert new_registry.unreleased() == []
    decoded = Codec(new_registry).decode(old_wire)
    assert decoded.writer_version == 1
    assert decoded.record["unit"] is None
    assert decoded.record["value"] == 12.5
