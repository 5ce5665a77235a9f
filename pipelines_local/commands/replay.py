"""``pipeline replay``: preview, run, follow and resume a replay of the archive.

Without ``--execute`` it only previews (objects, events, bytes, estimated duration). With it:

* ``--target stream`` re-puts the selected events with ``metadata.replay_id`` set
  (:mod:`pipelines_local.replay`);
* ``--target projections`` rebuilds the read models into shadow tables and diffs them with
  the live ones; ``promote ID`` switches the projector to them, ``discard ID`` drops them
  (:mod:`pipelines_local.rebuild`);
* ``--target lake --table T`` appends to one lake table the archived events it lacks.

``pipeline replay status [ID]``, ``resume ID`` and ``cancel ID`` follow a replay by its id.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import timedelta
from typing import Any, TextIO

from pipelines_local.progress import Progress
from pipelines_local.rebuild import (
    RebuildPlan,
    drop_tables,
    promote,
    rebuild_lake,
    rebuild_projections,
)
from pipelines_local.replay import (
    ARRIVAL,
    EVENT,
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
from pipelines_local.workspace import DEFAULT_WORKSPACE, Workspace, promoted_tfvars_path

ACTIONS = ("status", "resume", "cancel", "promote", "discard")
TARGETS = ("stream", "projections", "lake")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "replay",
        help="re-drive a slice of the archive onto the stream, or rebuild the read models or "
        "a lake table from it (previews unless --execute)",
        description="Selects archived events by arrival or event time, type, aggregate id and "
        "shard. --target stream re-puts them on the stream with metadata.replay_id set and the "
        "same event_id, so every consumer applies each at most once; replayed events are not "
        "archived again and raise no alerts. Order is kept per partition key (aggregate id); "
        "there is no global order. --target projections rebuilds every read model from the "
        "whole archive, up to the projector's checkpoints, into shadow tables <table>-<id> "
        "through the projector's own code (no stream, no side effects) and diffs them with the "
        "live tables; `promote ID` switches the projector to them, `discard ID` drops them. "
        "--target lake --table T appends to one lake table the selected events it does not "
        "hold. Without --execute nothing is written: the command prints what it would do. "
        "`pipeline replay status [ID]`, `resume ID` and `cancel ID` follow a replay.",
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
        choices=TARGETS,
        default="stream",
        help="where the events go: the stream, shadow read models, or a lake table "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--table",
        metavar="T",
        help="with --target lake: the lake table (transaction_recorded) or its event type",
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
        raise ReplayError(f"{args.replay_id!r}: say what to do with it ({', '.join(ACTIONS)})")
    if args.action not in (None, "status") and args.replay_id is None:
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
    if args.action in ("promote", "discard"):
        return _finish_rebuild(workspace, store.load(args.replay_id), store, args, stdout)
    s3 = workspace.client("s3")
    bucket = workspace.bucket("archive")
    prefix = str(workspace.output("archive_prefix"))
    if args.action == "resume":
        record = store.load(args.replay_id)
        if record.state not in ("cancelled", "failed", "running"):
            raise ReplayError(f"replay {record.replay_id} is {record.state}: nothing to resume")
        return _execute(workspace, s3, bucket, prefix, record, store, args, stdout)
    assert selection is not None
    target = args.target
    shards = open_shards(workspace.client("kinesis"), workspace.stream_name)
    preview = plan(
        s3, bucket, prefix, selection, shards=shards, rate=args.rate, speedup=args.speedup
    )
    if not args.execute or preview.events == 0:
        _print_plan(preview, args.json, stdout, executing=args.execute, target=target)
        return 0
    record = ReplayRecord(
        replay_id=new_replay_id(),
        target=target,
        selection=selection.to_dict(),
        rate=args.rate,
        speedup=args.speedup,
        planned_events=preview.events,
    )
    if target == "lake":
        record.rebuild = {"event_type": selection.event_types[0]}
    if not args.json:
        _print_plan(preview, False, stdout, executing=True, target=target)
        print(f"replay {record.replay_id}", file=stdout, flush=True)
    return _execute(workspace, s3, bucket, prefix, record, store, args, stdout)


def _selection(args: argparse.Namespace) -> Selection:
    shard_bound_pacer(1, rate=args.rate, speedup=args.speedup)  # refuses a pace that cannot be kept
    if args.target != "stream" and (args.rate is not None or args.speedup is not None):
        raise ReplayError(
            f"--rate and --speedup pace the stream; --target {args.target} writes no stream"
        )
    if args.table is not None and args.target != "lake":
        raise ReplayError("--table is for --target lake")
    if args.target == "projections":
        narrowed = [
            flag
            for flag, value in (
                ("--since", args.since),
                ("--until", args.until),
                ("--event-type", args.event_type),
                ("--aggregate-id", args.aggregate_id),
                ("--shard", args.shard),
            )
            if value
        ]
        if narrowed:
            raise ReplayError(
                f"--target projections rebuilds every read model from the whole archive, up to "
                f"the projector's checkpoints; {', '.join(narrowed)} would leave the shadow "
                "tables partial (replay a slice onto the stream with --target stream instead)"
            )
    event_types = tuple(args.event_type)
    if args.target == "lake":
        if args.table is None:
            raise ReplayError("--target lake needs --table (a lake table or its event type)")
        if event_types:
            raise ReplayError("--target lake takes the table's events: drop --event-type")
        event_types = (_lake_event_type(args.table),)
    return Selection(
        since=None if args.since is None else parse_time(args.since, "--since"),
        until=None if args.until is None else parse_time(args.until, "--until"),
        by=args.by,
        event_types=event_types,
        aggregate_ids=tuple(args.aggregate_id),
        shards=tuple(args.shard),
        lateness=timedelta(hours=args.lateness_hours),
    )


def _lake_event_type(name: str) -> str:
    """The event type of a lake table named by its table name or its event type."""
    from pipelines.consumers.lake.schema import table_name
    from pipelines.contract.schemas import default_registry

    event_types = sorted(default_registry().current)
    for event_type in event_types:
        if name in (event_type, table_name(event_type)):
            return event_type
    known = ", ".join(table_name(t) for t in event_types)
    raise ReplayError(f"--table {name!r} is no lake table (the lake has {known})")


def _execute(
    workspace: Workspace,
    s3: Any,
    bucket: str,
    prefix: str,
    record: ReplayRecord,
    store: ReplayStore,
    args: argparse.Namespace,
    stdout: TextIO,
) -> int:
    shown = Progress()
    step = f"{record.target} replay {record.replay_id}"
    done_events = record.replayed_events

    def progress(n: int) -> None:
        nonlocal done_events
        done_events += n
        shown.update(step, done_events, record.planned_events or None)

    with shown:
        shown.update(step, done_events, record.planned_events or None)
        if record.target == "projections":
            done = rebuild_projections(workspace, record, store, progress=progress)
        elif record.target == "lake":
            assert record.rebuild is not None
            rebuild_lake(
                s3,
                workspace.lake_catalog(),
                bucket=bucket,
                prefix=prefix,
                record=record,
                store=store,
                event_type=record.rebuild["event_type"],
                progress=progress,
            )
            done = record
        else:
            kinesis = workspace.client("kinesis")
            shards = open_shards(kinesis, workspace.stream_name)
            done = replay_to_stream(
                s3,
                kinesis,
                bucket=bucket,
                prefix=prefix,
                stream_name=workspace.stream_name,
                record=record,
                store=store,
                pacer=shard_bound_pacer(shards, rate=record.rate, speedup=record.speedup),
                progress=progress,
            )
    if record.target == "projections" and not args.json:
        _print_diff(done, stdout)
        return 0
    return _print_records([done], args.json, stdout)


def _finish_rebuild(
    workspace: Workspace,
    record: ReplayRecord,
    store: ReplayStore,
    args: argparse.Namespace,
    stdout: TextIO,
) -> int:
    """``promote``: the projector onto the shadow tables; ``discard``: drop them."""
    if record.target != "projections" or record.rebuild is None:
        raise ReplayError(
            f"replay {record.replay_id} is to {record.target}: only a rebuild of the "
            "projections (--target projections) is promoted or discarded"
        )
    rebuilt = RebuildPlan.from_dict(record.rebuild)
    lambda_client = workspace.client("lambda")
    function = workspace.function("projector")
    if args.action == "promote":
        if record.state != "completed":
            raise ReplayError(
                f"replay {record.replay_id} is {record.state}: only a completed rebuild is "
                "promoted (resume it first)"
            )
        replaced = promote(
            lambda_client,
            function,
            rebuilt,
            state_dir=workspace.state_dir,
            workspace=workspace.name,
        )
        tables = {**workspace.output("table_names"), **rebuilt.shadow}
        Workspace(
            workspace.name,
            workspace.endpoint_url,
            workspace.region,
            {**workspace.outputs, "table_names": tables},
            state_dir=workspace.state_dir,
            embedded=workspace.embedded,
        ).save()
        record.state = "promoted"
        record.result = {**(record.result or {}), "replaced": replaced}
        store.save(record)
        if args.json:
            return _print_records([record], True, stdout)
        for projection, table in sorted(rebuilt.shadow.items()):
            print(f"{projection:<16} {replaced[projection]} -> {table}", file=stdout)
        print(
            f"the projector ({function}) now reads and writes the rebuilt tables; recorded in "
            f"{promoted_tfvars_path(workspace.state_dir, workspace.name)}, which `pipeline up` "
            "passes to Terraform (elsewhere: terraform apply -var-file=<that file>). "
            "The replaced tables are kept.",
            file=stdout,
        )
        return 0
    in_use = set(
        lambda_client.get_function_configuration(FunctionName=function)
        .get("Environment", {})
        .get("Variables", {})
        .values()
    )
    live = sorted(set(rebuilt.shadow.values()) & in_use)
    if live:
        raise ReplayError(
            f"replay {record.replay_id}'s tables {', '.join(live)} are the projector's live "
            "tables (it was promoted): promote another rebuild before discarding this one"
        )
    if record.state == "running":
        raise ReplayError(f"replay {record.replay_id} is running: cancel it first")
    dropped = drop_tables(workspace.client("dynamodb"), sorted(rebuilt.shadow.values()))
    record.state = "discarded"
    record.result = {**(record.result or {}), "dropped": dropped}
    store.save(record)
    if args.json:
        return _print_records([record], True, stdout)
    print(f"dropped {len(dropped)} shadow table(s): {', '.join(dropped) or 'none'}", file=stdout)
    return 0


def _print_diff(record: ReplayRecord, out: TextIO) -> None:
    result = record.result or {}
    print(
        f"rebuilt {result.get('events_applied', 0):,} events into shadow tables, up to "
        f"{result.get('cut')}",
        file=out,
    )
    print(
        f"  {'projection':<16} {'live':>8} {'shadow':>8} {'same':>8} {'differ':>7} "
        f"{'only live':>9} {'only shadow':>11}",
        file=out,
    )
    for projection, table in sorted(result.get("tables", {}).items()):
        print(
            f"  {projection:<16} {table['live_items']:>8,} {table['shadow_items']:>8,} "
            f"{table['identical']:>8,} {table['differing']:>7,} {table['only_live']:>9,} "
            f"{table['only_shadow']:>11,}",
            file=out,
        )
    for projection, table in sorted(result.get("tables", {}).items()):
        for difference in table["sample"][:10]:
            key = json.dumps(difference["key"], sort_keys=True)
            print(
                f"  {projection} {key} {difference['kind']}: {difference['attribute']} live "
                f"{json.dumps(difference['live'])} shadow {json.dumps(difference['shadow'])}",
                file=out,
            )
    for code, count in sorted(result.get("would_quarantine", {}).items()):
        print(f"  the projector refuses {count:,} archived event(s): {code}", file=out)
    if result.get("archive_behind_on"):
        print(
            "  the archive is behind the projector on "
            f"{', '.join(result['archive_behind_on'])}: run again once it has caught up",
            file=out,
        )
    verdict = (
        "same: every shadow table equals its live table"
        if result.get("same")
        else "different: see above (`--json` has every table's sample)"
    )
    print(verdict, file=out)
    print(
        f"finish with `pipeline replay promote {record.replay_id}` or "
        f"`pipeline replay discard {record.replay_id}`",
        file=out,
    )


def _print_plan(
    preview: Plan, as_json: bool, out: TextIO, *, executing: bool, target: str = "stream"
) -> None:
    if as_json:
        document = {
            "execute": executing and preview.events > 0,
            "target": target,
            **preview.to_dict(),
        }
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
    if target == "projections":
        print(
            "to rebuild every read model into shadow tables <table>-<replay id>, up to the "
            "projector's checkpoints, and diff them with the live tables",
            file=out,
        )
    elif target == "lake":
        print("to append to the lake table the events it does not hold", file=out)
    else:
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
