"""``pipeline quarantine list``: the poison records the consumers set aside, with their reasons.

Each consumer quarantines a record it can never accept in the workspace's quarantine bucket
(:mod:`pipelines.adapters.quarantine`): the bytes as they arrived in
``<consumer>/<shard>/<sequence>-<sub-sequence>.avro`` and the reason beside them in a
``.json`` of the same name. A record every consumer refuses is quarantined once per consumer.
This command lists them without changing anything.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from typing import Any, TextIO

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


def quarantined(s3: Any, bucket: str) -> Iterator[dict[str, Any]]:
    """Every reason file of the bucket, with the key of the bytes it describes."""
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for entry in page.get("Contents", []):
            key = entry["Key"]
            if not key.endswith(".json"):
                continue
            report = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
            yield {**report, "key": key[: -len(".json")] + ".avro"}


def list_quarantine(args: argparse.Namespace, stdout: TextIO = sys.stdout) -> int:
    workspace = Workspace.load(args.workspace, endpoint_url=args.endpoint)
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
