"""``pipeline events encode|decode``: look at what is on a stream."""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import sys
from typing import Any, TextIO

from pipelines.contract.codec import default_codec
from pipelines.contract.events import event_from_json, event_to_json, partition_key
from pipelines.contract.schemas import EVENT_TYPES, SchemaRegistry, schemas_dir
from pipelines.errors import PipelineError
from pipelines.stream.aggregation import Aggregator
from pipelines.stream.records import decode_stream_record


def register(subparsers: Any) -> None:
    events = subparsers.add_parser(
        "events",
        help="encode and decode events on the wire",
        description="The wire format of the stream: Avro single-object encoding, in KPL "
        "aggregates or not. `encode` turns JSON events into base64 record data a producer "
        "can put; `decode` turns record data back into JSON events.",
    )
    sub = events.add_subparsers(dest="events_command", required=True, metavar="ACTION")

    encode = sub.add_parser(
        "encode",
        help="JSON events (one per line, stdin) to base64 wire records (stdout)",
        description="Reads JSON events, one per line: the event's body fields and an optional "
        "partial 'metadata' object (missing metadata is filled in). Writes each event's "
        "Avro single-object encoding, base64, one per line; with --aggregate, one KPL "
        "aggregated record holding them all.",
    )
    encode.add_argument("--type", required=True, choices=EVENT_TYPES, dest="event_type")
    encode.add_argument("--aggregate", action="store_true", help="pack into one aggregated record")
    encode.add_argument("--producer", default="cli", help="metadata.producer (default: cli)")
    encode.set_defaults(func=run_encode)

    decode = sub.add_parser(
        "decode",
        help="base64 records (one per line, stdin) to JSON events (stdout)",
        description="Reads base64 Kinesis record data, aggregated or not, one per line, and "
        "prints every event in it as one JSON object per line with its type and schema "
        "fingerprint. Undecodable lines are reported on stderr; the exit code is 1 if any.",
    )
    decode.set_defaults(func=run_decode)


def _lines(stream: TextIO) -> list[tuple[int, str]]:
    return [(n, line.strip()) for n, line in enumerate(stream, 1) if line.strip()]


def run_encode(
    args: argparse.Namespace,
    stdin: TextIO = sys.stdin,
    stdout: TextIO = sys.stdout,
    stderr: TextIO = sys.stderr,
) -> int:
    codec = default_codec()
    registry = SchemaRegistry(schemas_dir())
    if args.event_type in {v.event_type for v in registry.unreleased()}:
        current = registry.current[args.event_type]
        print(
            f"warning: schemas/{args.event_type}.avsc has changed since its last release; "
            f"these records carry the unreleased fingerprint {current.fingerprint_hex}, which "
            "deployed consumers do not know and will quarantine "
            "(`pipeline schemas release` releases it)",
            file=stderr,
        )
    encoded: list[tuple[str, bytes]] = []
    errors = 0
    for n, line in _lines(stdin):
        try:
            data = json.loads(line)
            _check_event_type(data, args.event_type)
            event = event_from_json(args.event_type, data, producer=args.producer)
            encoded.append((partition_key(event), codec.encode(event)))
        except json.JSONDecodeError as exc:
            errors += 1
            print(f"line {n}: not JSON: {exc.msg} at column {exc.colno}", file=stderr)
        except PipelineError as exc:
            errors += 1
            print(f"line {n}: {exc}", file=stderr)
    if errors:
        print(f"{errors} line(s) rejected; nothing written", file=stderr)
        return 1
    if args.aggregate and encoded:
        aggregator = Aggregator()
        for key, data in encoded:
            if not aggregator.add(key, data):
                print("the events do not fit in one 1 MiB aggregated record", file=stderr)
                return 1
        stdout.write(base64.b64encode(aggregator.seal()).decode() + "\n")
    else:
        for _, data in encoded:
            stdout.write(base64.b64encode(data).decode() + "\n")
    return 0


def _check_event_type(data: Any, event_type: str) -> None:
    """A ``metadata.event_type`` that is not ``--type`` is a mistake, not something to fix."""
    meta = data.get("metadata") if isinstance(data, dict) else None
    given = meta.get("event_type") if isinstance(meta, dict) else None
    if given is not None and given != event_type:
        raise PipelineError(
            f"metadata.event_type is {given!r} but --type is {event_type!r}; "
            "drop one or make them agree"
        )


def run_decode(
    args: argparse.Namespace,
    stdin: TextIO = sys.stdin,
    stdout: TextIO = sys.stdout,
    stderr: TextIO = sys.stderr,
) -> int:
    codec = default_codec()
    errors = 0
    for n, line in _lines(stdin):
        try:
            raw = base64.b64decode(line, validate=True)
        except (binascii.Error, ValueError) as exc:
            errors += 1
            print(f"line {n}: not base64: {exc}", file=stderr)
            continue
        decoded = decode_stream_record(raw, partition_key="", sequence_number=str(n), codec=codec)
        for poisoned in decoded.poison:
            errors += 1
            where = f"line {n}" + (
                f" record {poisoned.record.sub_sequence_number}" if decoded.aggregated else ""
            )
            print(f"{where}: {poisoned.error.reason}", file=stderr)
        for delivered in decoded.events:
            event = delivered.event
            out = {
                "event_type": event.event_type,
                "fingerprint": event.fingerprint.hex(),
                "schema_version": event.writer_version,
                "partition_key": event.metadata["aggregate_id"],
                "event": event_to_json(event.record, event.event_type),
            }
            if decoded.aggregated:
                out["sub_sequence_number"] = delivered.sub_sequence_number
            stdout.write(json.dumps(out, ensure_ascii=False) + "\n")
    return 1 if errors else 0
