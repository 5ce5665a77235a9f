"""``pipeline quarantine list``: the poison records the consumers set aside, with their reasons.

Each consumer quarantines a record it can never accept in the workspace's quarantine bucket
(:mod:`pipelines.adapters.quarantine`): the bytes as they arrived in
``<consumer>/<shard>/<sequence>-<sub-sequence>.avro`` and the reason beside them in a
``.json`` of the same name. A record every consumer refuses is quarantined once per consumer.
``list`` shows them without changing anything; ``redrive`` puts their bytes back on the
stream after a fix.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from typing import Any, TextIO

from pipelines.errors import PipelineError
from pipelines_local.workspace import DEFAULT_WORKSPACE, Workspace


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "quarantine",
        help="list the poison records the consumers quarantined, with their reasons",
        description="The consumers keep every record they can never accept in the quarantine "
        "bucket: its bytes, where it was on the stream and why it was refused.",
    )
    commands = parser.add_subparsers(dest="quarantine_command", required=True, metavar="COMMAND")
    listing = commands.add_parser(
        "list",
        help="every quarantined record: consumer, coordinates, code and reason",
        description="Reads the reason files of the workspace's quarantine bucket (nothing is "
        "changed) and prints one line per record and consumer, oldest arrival first.",
    )
    listing.add_argument("--workspace", default=DEFAULT_WORKSPACE, help="(default: %(default)s)")
    listing.add_argument(
        "--endpoint",
        metavar="URL",
        help="AWS-compatible endpoint (default: where `pipeline up` deployed the workspace)",
    )
    listing.add_argument(
        "--consumer",
        action="append",
        default=[],
        metavar="NAME",
        help="only this consumer's (projector, lake-writer, archiver, alerter); repeatable",
    )
    listing.add_argument(
        "--code", action="append", default=[], help="only this kind of poison; repeatable"
    )
    listing.add_argument("--json", action="store_true", help="print the records as JSON")
    listing.set_defaults(func=list_quarantine)

    redrive = commands.add_parser(
        "redrive",
        help="put quarantined records' bytes back on the stream, once each (previews unless "
        "--execute)",
        description="After a fix (a schema registered, a consumer corrected), puts the bytes of "
        "each selected quarantined record back on the stream once, with its partition key, "
        "oldest first. Every consumer reads it as a new stream record: one that accepted it "
        "before applies it at most once (event ids), one that still refuses it quarantines it "
        "again under its new coordinates, so nothing is lost. Without --execute nothing is "
        "written.",
    )
    redrive.add_argument("--workspace", default=DEFAULT_WORKSPACE, help="(default: %(default)s)")
    redrive.add_argument("--endpoint", metavar="URL", help="AWS-compatible endpoint")
    redrive.add_argument("--consumer", action="append", default=[], metavar="NAME")
    redrive.add_argument("--code", action="append", default=[])
    redrive.add_argument("--execute", action="store_true", help="put (without it, preview)")
    redrive.add_argument("--json", action="store_true", help="print the result as JSON")
    redrive.set_defaults(func=redrive_quarantine)


def quarantined(s3: Any, bucket: str) -> Iterator[dict[str, Any]]:
    """Every reason file of the bucket, with the key of the bytes it describes."""
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for entry in page.get("Contents", []):
            key = entry["Key"]
            if not key.endswith(".json"):
                continue
            report = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
            yield {**report, "key": key[: -len(".json")] + ".avro"}


def _selected(args: argparse.Namespace, workspace: Workspace) -> list[dict[str, Any]]:
    bucket = workspace.bucket("quarantine")
    records = [
        r
        for r in quarantined(workspace.client("s3"), bucket)
        if (not args.consumer or r.get("consumer") in args.consumer)
        and (not args.code or r.get("code") in args.code)
    ]
    records.sort(
        key=lambda r: (
            r.get("approximate_arrival") or "",
            r.get("shard_id") or "",
            int(r.get("sequence_number") or 0),
            int(r.get("sub_sequence_number") or 0),
            r.get("consumer") or "",
        )
    )
    return records


def list_quarantine(args: argparse.Namespace, stdout: TextIO = sys.stdout) -> int:
    workspace = Workspace.load(args.workspace, endpoint_url=args.endpoint)
    bucket = workspace.bucket("quarantine")
    records = _selected(args, workspace)
    if args.json:
        print(json.dumps(records, indent=2), file=stdout)
        return 0
    if not records:
        print(f"nothing quarantined in s3://{bucket}", file=stdout)
        return 0
    for r in records:
        print(
            f"{r.get('approximate_arrival') or '-':<25} {r.get('consumer', '?'):<12} "
            f"{r.get('shard_id')} {r.get('sequence_number')}/{r.get('sub_sequence_number')} "
            f"{r.get('code')}: {r.get('reason')}",
            file=stdout,
        )
    distinct = {
        (r.get("shard_id"), r.get("sequence_number"), r.get("sub_sequence_number")) for r in records
    }
    print(
        f"{len(distinct)} records quarantined ({len(records)} with each consumer that refused "
        f"them) in s3://{bucket}; the bytes are beside each reason, in <key>.avro",
        file=stdout,
    )
    return 0


_PUT_ATTEMPTS = 8


def redrive_quarantine(args: argparse.Namespace, stdout: TextIO = sys.stdout) -> int:
    workspace = Workspace.load(args.workspace, endpoint_url=args.endpoint)
    bucket = workspace.bucket("quarantine")
    distinct: dict[tuple[Any, Any, Any], dict[str, Any]] = {}
    for r in _selected(args, workspace):
        coordinates = (r.get("shard_id"), r.get("sequence_number"), r.get("sub_sequence_number"))
        distinct.setdefault(coordinates, r)
    records = list(distinct.values())
    s3 = workspace.client("s3")
    entries = [
        {
            "Data": s3.get_object(Bucket=bucket, Key=r["key"])["Body"].read(),
            "PartitionKey": r.get("partition_key") or "quarantine",
        }
        for r in records
    ]
    put = 0
    if args.execute and entries:
        put = _put_all(workspace.client("kinesis"), workspace.stream_name, entries)
    document = {
        "execute": bool(args.execute),
        "records": len(records),
        "bytes": sum(len(e["Data"]) for e in entries),
        "put": put,
        "keys": [r["key"] for r in records],
    }
    if args.json:
        print(json.dumps(document, indent=2), file=stdout)
    elif not records:
        print(f"nothing quarantined in s3://{bucket} matches", file=stdout)
    elif args.execute:
        print(f"put {put} quarantined records back on {workspace.stream_name}", file=stdout)
    else:
        print(
            f"{len(records)} quarantined records ({document['bytes']:,} bytes) would be put "
            f"back on {workspace.stream_name}; preview only (add --execute)",
            file=stdout,
        )
    return 0


def _put_all(kinesis: Any, stream: str, entries: list[dict[str, Any]]) -> int:
    """PutRecords in order, 500 at a time, retrying the entries that failed (throttling)."""
    for start in range(0, len(entries), 500):
        pending = entries[start : start + 500]
        for attempt in range(_PUT_ATTEMPTS):
            response = kinesis.put_records(StreamName=stream, Records=pending)
            if not response.get("FailedRecordCount"):
                break
            pending = [
                entry
                for entry, result in zip(pending, response["Records"], strict=True)
                if "ErrorCode" in result
            ]
            time.sleep(min(2.0, 0.1 * 2**attempt))
        else:
            raise PipelineError(
                f"{len(pending)} quarantined records could not be put on {stream} after "
                f"{_PUT_ATTEMPTS} attempts (the stream kept refusing them); nothing else was lost"
            )
    return len(entries)
