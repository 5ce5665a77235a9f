"""``pipeline replay``: preview, run, follow and resume a replay of the archive onto the stream.

Without ``--execute`` it only previews (objects, events, bytes, estimated duration); with it,
the selected events are re-put with ``metadata.replay_id`` set (:mod:`pipelines_local.replay`).
``pipeline replay status [ID]``, ``resume ID`` and ``cancel ID`` follow a replay by its id.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import timedelta
from typing import Any, TextIO

from pipelines_local.replay import (
    ARRIVAL,
    EVENT,
    Pacer,
    Plan,
    ReplayError,
    ReplayRecord,
    ReplayStore,
    Selection,
    new_replay_id,
    open_shards,
    parse_time,
    plan,
    replay_to_stream,
    shard_bound_pacer,
)
from pipelines_local.workspace import DEFAULT_WORKSPACE, Workspace

ACTIONS = ("status", "resume", "cancel")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "replay",
        help="re-drive a slice of the archive onto the stream (previews unless --execute)",
        description="Selects archived events by arrival or event time, type, aggregate id and "
        "shard, and re-puts them on the stream with metadata.replay_id set and the same "
        "event_id, so every consumer applies each at most once; replayed events are not "
        "archived again and raise no alerts. Order is kept per partition key (aggregate id); "
        "there is no global order. Without --execute nothing is written: the command prints "
        "what it would replay. `pipeline replay status [ID]`, `resume ID` and `cancel ID` "
        "follow a replay.",
    )
    parser.add_argument("action", nargs="?", choices=ACTIONS, help="follow a replay by its id")
    parser.add_argument("replay_id", nargs="?", metavar="ID", help="a replay's id (rp-...)")
    parser.add_argument("--workspace", default=DEFAULT_WORKSPACE, help="(default: %(default)s)")
    parser.add_argument(
        "--endpoint",
        metavar="URL",
        help="AWS-compatible endpoint (default: where `pipeline up` deployed the workspace)",
    )
    parser.add_argument("--since", metavar="TIME", help="from this time (ISO 8601, UTC)")
    parser.add_argument("--until", metavar="TIME", help="before this time (ISO 8601, UTC)")
    parser.add_argument(
        "--by",
        choices=(ARRIVAL, EVENT),
        default=ARRIVAL,
        help="whether --since/--until are arrival times on the stream or the events' own "
        "times (default: %(default)s)",
    )
    parser.add_argument(
        "--lateness-hours",
        type=float,
        default=24.0,
        help="with --by event: how long after it occurred an event may have arrived "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--event-type", action="append", default=[], metavar="TYPE", help="repeatable"
    )
    parser.add_argument(
        "--aggregate-id", action="append", default=[], metavar="ID", help="repeatable"
    )
    parser.add_argument("--shard", action="append", default=[], metavar="ID", help="repeatable")
    parser.add_argument(
        "--target",
        choices=("stream",),
        default="stream",
        help="where the events go (default: %(default)s)",
    )
    pace = parser.add_mutually_exclusive_group()
    pace.add_argument("--rate", type=float, metavar="N", help="events per second at most")
    pace.add_argument(
        "--speedup", type=float, metavar="X", help="X times the original arrival pace"
    )
    parser.add_argument("--execute", action="store_true", help="replay (without it, only preview)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, stdout: TextIO = sys.stdout) -> int:
    if args.action is None and args.replay_id is not None:
        raise ReplayError(f"{args.replay_id!r}: say what to do with it (status, resume, cancel)")
    if args.action in ("resume", "cancel") and args.replay_id is None:
        raise ReplayError(f"pipeline replay {args.action} needs a replay id")
    selection = None if args.action else _selection(args)  # a bad range fails first
    workspace = Workspace.load(args.workspace, endpoint_url=args.endpoint)
    store = ReplayStore(workspace.state_dir / "replays" / workspace.name)
    if args.action == "status":
        records = [store.load(args.replay_id)] if args.replay_id else store.all()
        return _print_records(records, args.json, stdout)
    if args.action == "cancel":
        record = store.load(args.replay_id)
        if record.state != "running":
            raise ReplayError(f"replay {record.replay_id} is {record.state}, not running")
        record.state = "cancelled"
        store.save(record)
        return _print_records([record], args.json, stdout)
    s3 = workspace.client("s3")
    kinesis = workspace.client("kinesis")
    bucket = workspace.bucket("archive")
    prefix = str(workspace.output("archive_prefix"))
    shards = open_shards(kinesis, workspace.stream_name)
    if args.action == "resume":
        record = store.load(args.replay_id)
        if record.state == "completed":
            raise ReplayError(f"replay {record.replay_id} is completed: nothing to resume")
        pacer = shard_bound_pacer(shards, rate=record.rate, speedup=record.speedup)
        return _execute(workspace, s3, kinesis, bucket, prefix, record, store, pacer, args, stdout)
    assert selection is not None
    pacer = shard_bound_pacer(shards, rate=args.rate, speedup=args.speedup)
    preview = plan(
        s3, bucket, prefix, selection, shards=shards, rate=args.rate, speedup=args.speedup
    )
    if not args.execute or preview.events == 0:
        _print_plan(preview, args.json, stdout, executing=args.execute)
        return 0
    record = ReplayRecord(
        replay_id=new_replay_id(),
        target=args.target,
        selection=selection.to_dict(),
        rate=args.rate,
        speedup=args.speedup,
        planned_events=preview.events,
    )
    if not args.json:
        _print_plan(preview, False, stdout, executing=True)
        print(f"replay {record.replay_id}", file=stdout, flush=True)
    return _execute(workspace, s3, kinesis, bucket, prefix, record, store, pacer, args, stdout)


def _selection(args: argparse.Namespace) -> Selection:
    shard_bound_pacer(1, rate=args.rate, speedup=args.speedup)  # refuses a pace that cannot be kept
    return Selection(
        since=None if args.since is None else parse_time(args.since, "--since"),
        until=None if args.until is None else parse_time(args.until, "--until"),
        by=args.by,
        event_types=tuple(args.event_type),
        aggregate_ids=tuple(args.aggregate_id),
        shards=tuple(args.shard),
        lateness=timedelta(hours=args.lateness_hours),
    )


def _execute(
    workspace: Workspace,
    s3: Any,
    kinesis: Any,
    bucket: str,
    prefix: str,
    record: ReplayRecord,
    store: ReplayStore,
    pacer: Pacer,
    args: argparse.Namespace,
    stdout: TextIO,
) -> int:
    show = not args.json and sys.stderr.isatty()
    progress_bar = None
    if show:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        progress_bar = Progress(
            TextColumn(record.replay_id),
            BarColumn(),
            MofNCompleteColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            transient=True,
        )
        task = progress_bar.add_task("replay", total=record.planned_events or None)
        progress_bar.update(task, completed=record.replayed_events)
        progress_bar.start()

    def progress(n: int) -> None:
        if progress_bar is not None:
            progress_bar.advance(task, n)

    try:
        done = replay_to_stream(
            s3,
            kinesis,
            bucket=bucket,
            prefix=prefix,
            stream_name=workspace.stream_name,
            record=record,
            store=store,
            pacer=pacer,
            progress=progress,
        )
    finally:
        if progress_bar is not None:
            progress_bar.stop()
    return _print_records([done], args.json, stdout)


def _print_plan(preview: Plan, as_json: bool, out: TextIO, *, executing: bool) -> None:
    if as_json:
        document = {"execute": executing and preview.events > 0, **preview.to_dict()}
        print(json.dumps(document, indent=2), file=out)
        return
    if preview.events == 0:
        print(
            f"nothing to replay: no archived event matches ({preview.objects} objects read)",
            file=out,
        )
        return
    print(
        f"{preview.events:,} events ({preview.event_bytes:,} bytes) in {preview.objects:,} "
        f"archive objects ({preview.object_bytes:,} bytes)",
        file=out,
    )
    for event_type, count in sorted(preview.by_type.items()):
        print(f"  {event_type:<24} {count:>10,}", file=out)
    pace = (
        f"at {preview.rate:g} events/s"
        if preview.rate
        else f"at {preview.speedup:g}x the original pace"
        if preview.speedup
        else f"as fast as {preview.shards} shard(s) take it"
    )
    print(f"estimated {preview.estimated_seconds:,.1f} s {pace}", file=out)
    if not executing:
        print("preview only: nothing was written (add --execute to replay)", file=out)


def _print_records(records: list[ReplayRecord], as_json: bool, out: TextIO) -> int:
    if as_json:
        document: Any = [r.to_dict() for r in records]
        print(json.dumps(document if len(document) != 1 else document[0], indent=2), file=out)
        return 0
    if not records:
        print("no replays yet", file=out)
    for r in records:
        print(
            f"{r.replay_id}  {r.state:<9}  {r.replayed_events:,}/{r.planned_events:,} events  "
            f"to {r.target}  since {r.started_at}" + (f"  ({r.error})" if r.error else ""),
            file=out,
        )
    return 0
