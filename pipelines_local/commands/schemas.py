"""``pipeline schemas list|release``: the event contract's versions."""

from __future__ import annotations

import argparse
from typing import Any

from pipelines.contract.schemas import SchemaRegistry, schemas_dir


def register(subparsers: Any) -> None:
    schemas = subparsers.add_parser(
        "schemas",
        help="list or release event schema versions",
        description="The event contract: the Avro schemas in schemas/ and their released "
        "versions in schemas/history/, pinned by fingerprint. `list` shows every event type's "
        "versions; `release` freezes each changed schema as a new version, after proving with "
        "fastavro that it reads what every earlier version wrote.",
    )
    sub = schemas.add_subparsers(dest="schemas_command", required=True, metavar="ACTION")
    listing = sub.add_parser(
        "list",
        help="every event type's versions and fingerprints",
        description="Prints every event type's released versions with their fingerprints, and "
        "marks a schema edited since its last release.",
    )
    listing.set_defaults(func=run_list)
    release = sub.add_parser(
        "release",
        help="freeze changed schemas as new versions (refuses incompatible changes)",
        description="Writes each changed schema to schemas/history/ as its next version and "
        "pins its fingerprint; refuses a change that cannot read what earlier versions wrote.",
    )
    release.set_defaults(func=run_release)


def run_list(args: argparse.Namespace) -> int:
    registry = SchemaRegistry(schemas_dir())
    unreleased = {v.event_type for v in registry.unreleased()}
    for event_type, versions in registry.history.items():
        for v in versions:
            print(f"{event_type:<22} v{v.version:<3} {v.fingerprint_hex}")
        if event_type in unreleased:
            cur = registry.current[event_type]
            print(f"{event_type:<22} v{cur.version:<3} {cur.fingerprint_hex}  (unreleased)")
    return 0


def run_release(args: argparse.Namespace) -> int:
    registry = SchemaRegistry(schemas_dir())
    released = registry.release()
    for v in released:
        print(f"released {v.event_type} v{v.version} {v.fingerprint_hex}")
    if not released:
        print("every schema is already released")
    return 0
