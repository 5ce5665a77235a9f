"""The shipped Avro schemas: current versions, their history, fingerprints.

Layout of the ``schemas/`` folder (shipped inside the wheel as
``pipelines/_schemas``)::

    schemas/EventMetadata.avsc          shared named type, referenced by name
    schemas/<EventType>.avsc            current schema of each event type
    schemas/history/<EventType>/vN.avsc every version ever released, fully
                                        resolved (named types inlined)
    schemas/history/FINGERPRINTS        "<EventType> vN <fingerprint> <sha256>" per line

History files are never edited: ``FINGERPRINTS`` pins each one (the Avro
fingerprint of its parsing canonical form, and the SHA-256 of the file, since
defaults, docs and logical types are not part of the canonical form), and the test
suite fails if a file no longer matches its pin, if the current schema is not
the latest released version, or if the current schema cannot read data written
with any earlier version.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from fastavro.schema import fingerprint as _fingerprint
from fastavro.schema import parse_schema, to_parsing_canonical_form

from pipelines.errors import SchemaCompatibilityError

NAMESPACE = "pipelines.events"
SHARED_TYPES = ("EventMetadata",)
EVENT_TYPES = (
    "UserRegistered",
    "UserProfileUpdated",
    "UserActivityRecorded",
    "ImageLabeled",
    "MetricRecorded",
    "TransactionRecorded",
)
_VERSION_FILE = re.compile(r"^v(\d+)\.avsc$")


def schemas_dir() -> Path:
    """Where the schemas live: inside the package (``pipelines/_schemas``), or the checkout."""
    package = Path(__file__).resolve().parent.parent  # pipelines/
    packaged = package / "_schemas"
    if packaged.is_dir():
        return packaged
    return package.parent / "schemas"


def fingerprint_of(schema: dict[str, Any]) -> bytes:
    """The 8-byte little-endian CRC-64-AVRO fingerprint of a parsed schema."""
    canonical = to_parsing_canonical_form(schema)
    return bytes.fromhex(_fingerprint(canonical, "CRC-64-AVRO"))


@dataclass(frozen=True)
class SchemaVersion:
    """One released (or current) schema of one event type."""

    event_type: str
    version: int
    resolved: dict[str, Any] = field(repr=False)  # plain JSON, named types inlined
    parsed: dict[str, Any] = field(repr=False)  # fastavro's parsed form
    fingerprint: bytes

    @property
    def fingerprint_hex(self) -> str:
        return self.fingerprint.hex()


def _strip_fastavro_keys(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _strip_fastavro_keys(v) for k, v in node.items() if not k.startswith("__")}
    if isinstance(node, list):
        return [_strip_fastavro_keys(v) for v in node]
    return node


def resolve_schema(schema: Mapping[str, Any], named: Mapping[str, Any]) -> dict[str, Any]:
    """Inline the named types ``schema`` refers to; plain JSON out."""
    expanded = parse_schema(dict(schema), dict(named), expand=True, _write_hint=False)
    return _strip_fastavro_keys(expanded)


def _make_version(event_type: str, version: int, resolved: dict[str, Any]) -> SchemaVersion:
    parsed: dict[str, Any] = parse_schema(resolved, {})  # type: ignore[assignment]
    return SchemaVersion(event_type, version, resolved, parsed, fingerprint_of(parsed))


class SchemaRegistry:
    """Every schema the package ships, by event type and by fingerprint."""

    def __init__(self, root: Path) -> None:
        self.root = root
        named: dict[str, Any] = {}
        for shared in SHARED_TYPES:
            parse_schema(_read_json(root / f"{shared}.avsc"), named)
        self.history: dict[str, list[SchemaVersion]] = {}
        self.current: dict[str, SchemaVersion] = {}
        self._by_fingerprint: dict[bytes, SchemaVersion] = {}
        for event_type in EVENT_TYPES:
            versions = self._load_history(event_type)
            resolved = resolve_schema(_read_json(root / f"{event_type}.avsc"), named)
            released = versions[-1].version if versions else 0
            current = _make_version(event_type, released, resolved)
            if not versions or versions[-1].fingerprint != current.fingerprint:
                current = _make_version(event_type, released + 1, resolved)
            self.history[event_type] = versions
            self.current[event_type] = current
            # The current schema wins a fingerprint it shares with a released version
            # (they differ at most in docs, defaults or logical types).
            for v in (current, *reversed(versions)):
                self._by_fingerprint.setdefault(v.fingerprint, v)

    def _load_history(self, event_type: str) -> list[SchemaVersion]:
        folder = self.root / "history" / event_type
        if not folder.is_dir():
            return []
        versions = []
        for path in folder.iterdir():
            match = _VERSION_FILE.match(path.name)
            if match:
                versions.append(_make_version(event_type, int(match[1]), _read_json(path)))
        versions.sort(key=lambda v: v.version)
        return versions

    def by_fingerprint(self, fingerprint: bytes) -> SchemaVersion | None:
        return self._by_fingerprint.get(fingerprint)

    def all_versions(self) -> Iterable[SchemaVersion]:
        return self._by_fingerprint.values()

    def pinned(self) -> dict[tuple[str, int], tuple[str, str]]:
        """What ``history/FINGERPRINTS`` pins: {(event_type, version): (fingerprint, sha256)}."""
        path = self.root / "history" / "FINGERPRINTS"
        pins: dict[tuple[str, int], tuple[str, str]] = {}
        if path.exists():
            for line in path.read_text().splitlines():
                if line.strip() and not line.startswith("#"):
                    event_type, version, hex_fp, sha256 = line.split()
                    pins[(event_type, int(version.lstrip("v")))] = (hex_fp, sha256)
        return pins

    def history_file(self, version: SchemaVersion) -> Path:
        return self.root / "history" / version.event_type / f"v{version.version}.avsc"

    def unreleased(self) -> list[SchemaVersion]:
        """Current schemas that differ from their latest released version."""
        return [
            cur
            for event_type, cur in self.current.items()
            if not self.history[event_type]
            or self.history[event_type][-1].fingerprint != cur.fingerprint
        ]

    def release(self) -> list[SchemaVersion]:
        """Freeze every changed current schema as a new history version.

        Refuses (``SchemaCompatibilityError``) when the change cannot read what
        earlier versions wrote.
        """
        released = []
        for cur in self.unreleased():
            for old in self.history[cur.event_type]:
                check_can_read(cur, old)
            path = self.history_file(cur)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(cur.resolved, indent=2) + "\n")
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            with (self.root / "history" / "FINGERPRINTS").open("a") as pins:
                pins.write(f"{cur.event_type} v{cur.version} {cur.fingerprint_hex} {digest}\n")
            released.append(cur)
        return released


def check_can_read(reader: SchemaVersion, writer: SchemaVersion, samples: int = 50) -> None:
    """Prove that ``reader`` reads what ``writer`` wrote, or raise.

    Avro's resolution rules are applied by fastavro itself: random records are
    written with the writer schema and read with the reader schema. A reader
    field that the writer lacks and that has no default, an incompatible type
    change or a narrowed union fails here.
    """
    import io

    from fastavro import schemaless_reader, schemaless_writer
    from fastavro.utils import generate_many

    _check_defaults(reader.resolved, writer.resolved, reader.event_type)
    for record in generate_many(writer.parsed, samples):
        buf = io.BytesIO()
        schemaless_writer(buf, writer.parsed, record)
        buf.seek(0)
        try:
            schemaless_reader(buf, writer.parsed, reader.parsed)
        except Exception as exc:  # fastavro raises several kinds on resolution
            raise SchemaCompatibilityError(
                f"{reader.event_type} v{reader.version} cannot read data written with "
                f"v{writer.version}: {exc}"
            ) from exc


def _check_defaults(reader: dict[str, Any], writer: dict[str, Any], where: str) -> None:
    """Static half of the rule: a field new to the reader needs a default."""
    if reader.get("type") != "record" or writer.get("type") != "record":
        return
    written = {f["name"]: f for f in writer["fields"]}
    for f in reader["fields"]:
        aliases = {f["name"], *f.get("aliases", [])}
        match = next((written[a] for a in aliases if a in written), None)
        if match is None:
            if "default" not in f:
                raise SchemaCompatibilityError(
                    f"{where}: new field {f['name']!r} has no default, so events written "
                    "before it existed could not be read"
                )
        elif isinstance(f["type"], dict) and isinstance(match["type"], dict):
            _check_defaults(f["type"], match["type"], f"{where}.{f['name']}")


def _read_json(path: Path) -> dict[str, Any]:
    with path.open() as handle:
        data: dict[str, Any] = json.load(handle)
    return data


@cache
def default_registry() -> SchemaRegistry:
    return SchemaRegistry(schemas_dir())
