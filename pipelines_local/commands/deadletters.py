"""``pipeline deadletters show``: the batches Lambda gave up on, read back into events.

Each consumer's on-failure destination holds only a failed batch's coordinates (shard, first
and last sequence numbers). This command reads them from the destinations of the workspace's
functions (or takes them on the command line) and turns them back into events from the
archive, falling back to the stream for what the archive does not hold.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO

from pipelines.errors import PipelineError
from pipelines_local.deadletters import (
    FailedBatch,
    RecoveredBatch,
    destination_queues,
    failed_batches,
    queue_url,
    recover,
    redrive,
)
from pipelines_local.workspace import DEFAULT_WORKSPACE, Workspace


class DeadLettersError(PipelineError):
    """The command line names no batch, or names it incompletely."""


def _add_selection(parser: Any) -> None:
    parser.add_argument("--workspace", default=DEFAULT_WORKSPACE, help="(default: %(default)s)")
    parser.add_argument(
        "--endpoint",
        metavar="URL",
        help="AWS-compatible endpoint (default: where `pipeline up` deployed the workspace)",
    )
    parser.add_argument(
        "--function",
        action="append",
        metavar="NAME",
        help="only this function's destination, by its name in Terraform (projector, "
        "lake-writer, ...); repeatable (default: every function)",
    )
    parser.add_argument("--queue", metavar="URL", help="read this on-failure queue instead")
    parser.add_argument("--shard", help="a batch's shard id, instead of reading a destination")
    parser.add_argument("--start", metavar="SEQ", help="with --shard: the first sequence number")
    parser.add_argument("--end", metavar="SEQ", help="with --shard: the last sequence number")
    parser.add_argument(
        "--bucket", help="archive bucket (default: the workspace's, as Terraform output it)"
    )
    parser.add_argument("--prefix", help="archive key prefix (default: the workspace's)")
    parser.add_argument(
        "--no-stream", action="store_true", help="read the archive only, never the stream"
    )


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "deadletters",
        help="show the batches the consumers gave up on, as events read back from the archive",
        description="Lambda's on-failure destinations keep only where a failed batch was on "
        "the stream. These commands read those coordinates back into events.",
    )
    commands = parser.add_subparsers(dest="deadletters_command", required=True, metavar="COMMAND")
    show = commands.add_parser(
        "show",
        help="print every dead-lettered batch's events (type, id, sequence numbers)",
        description="Reads the on-failure destination of each of the workspace's functions "
        "(without consuming its messages), or the coordinates given with --shard, --start and "
        "--end, and prints the events of each batch from the archive objects whose ranges "
        "overlap it, then from the stream for records the archive does not hold.",
    )
    _add_selection(show)
    show.add_argument("--json", action="store_true", help="print the batches as JSON")
    show.set_defaults(func=show_dead_letters)
    redrive = commands.add_parser(
        "redrive",
        help="put the events of the dead-lettered batches back on the stream (previews unless "
        "--execute)",
        description="Resolves each on-failure message (or the coordinates given) to its "
        "archived events, as `show` does, and puts them back on the stream through the "
        "producer, each once, with metadata.replay_id set and the same event_id: a consumer "
        "that had applied an event skips it, the one that gave up applies it. Poison is not put "
        "back (its bytes are in the quarantine: `pipeline quarantine list`). The on-failure "
        "messages are left on their queue.",
    )
    _add_selection(redrive)
    redrive.add_argument(
        "--stream", help="put them on this stream (default: the workspace's event stream)"
    )
    redrive.add_argument("--execute", action="store_true", help="redrive (without it, preview)")
    redrive.add_argument("--json", action="store_true", help="print the result as JSON")
    redrive.set_defaults(func=redrive_dead_letters)


def redrive_dead_letters(args: argparse.Namespace, stdout: TextIO = sys.stdout) -> int:
    from pipelines.stream.producer import Producer
    from pipelines_local.replay import new_replay_id

    workspace = Workspace.load(args.workspace, endpoint_url=args.endpoint)
    batches = [batch for _, batch in _failed_batches(args, workspace)]
    stream = args.stream or workspace.stream_name
    producer = Producer(workspace.client("kinesis"), stream) if args.execute else None
    result = redrive(
        batches,
        s3=workspace.client("s3"),
        archive_bucket=args.bucket or workspace.bucket("archive"),
        archive_prefix=args.prefix
        if args.prefix is not None
        else str(workspace.output("archive_prefix")),
        producer=producer,
        replay_id=new_replay_id(),
    )
    result["stream"] = stream
    if args.json:
        print(json.dumps(result, indent=2), file=stdout)
        return 0
    verb = "put back on" if args.execute else "would put back on"
    print(
        f"{result['events']:,} events of {result['batches']} dead-lettered batch(es) {verb} "
        f"{stream} as {result['replay_id']}; {result['poison_skipped']} poison record(s) left "
        "to the quarantine",
        file=stdout,
    )
    if not args.execute:
        print("preview only: nothing was written (add --execute to redrive)", file=stdout)
    return 0


def show_dead_letters(args: argparse.Namespace, stdout: TextIO = sys.stdout) -> int:
    workspace = Workspace.load(args.workspace, endpoint_url=args.endpoint)
    sources = _failed_batches(args, workspace)
    s3 = workspace.client("s3")
    kinesis = None if args.no_stream else workspace.client("kinesis")
    bucket = args.bucket or workspace.bucket("archive")
    prefix = args.prefix if args.prefix is not None else str(workspace.output("archive_prefix"))
    recovered = [
        (
            source,
            recover(batch, s3=s3, archive_bucket=bucket, archive_prefix=prefix, kinesis=kinesis),
        )
        for source, batch in sources
    ]
    if args.json:
        documents = [{"source": source, **r.to_dict()} for source, r in recovered]
        print(json.dumps(documents, indent=2), file=stdout)
    else:
        _print(recovered, stdout)
    return 0


def _failed_batches(
    args: argparse.Namespace, workspace: Workspace
) -> list[tuple[str, FailedBatch]]:
    """(where it came from, the batch) for every batch the command line asks about."""
    if args.shard or args.start or args.end:
        if not (args.shard and args.start and args.end):
            raise DeadLettersError("give --shard, --start and --end together")
        batch = FailedBatch(workspace.stream_arn, args.shard, args.start, args.end)
        return [("command line", batch)]
    sqs = workspace.client("sqs")
    if args.queue:
        return [(args.queue, b) for b in failed_batches(sqs, args.queue)]
    functions = {str(k): str(v) for k, v in workspace.output("function_names").items()}
    if args.function:
        unknown = sorted(set(args.function) - set(functions))
        if unknown:
            raise DeadLettersError(
                f"no function {', '.join(unknown)} in workspace {workspace.name!r} "
                f"(it has {', '.join(sorted(functions))})"
            )
        functions = {k: v for k, v in functions.items() if k in args.function}
    out: list[tuple[str, FailedBatch]] = []
    for key, arn in destination_queues(workspace.client("lambda"), functions).items():
        out.extend((key, b) for b in failed_batches(sqs, queue_url(sqs, arn)))
    return out


def _print(recovered: list[tuple[str, RecoveredBatch]], out: TextIO) -> None:
    if not recovered:
        print("no dead-lettered batches", file=out)
        return
    for source, result in recovered:
        batch = result.batch
        size = f"{batch.batch_size} records, " if batch.batch_size is not None else ""
        print(
            f"{source}: {batch.shard_id} {batch.start_sequence_number}..{batch.end_sequence_number}"
            f" ({size}{batch.condition or 'coordinates'})",
            file=out,
        )
        rows = [
            (
                r.sequence_number,
                str(r.sub_sequence_number),
                r.event_type or "-",
                r.event_id or "-",
                r.poison_code or "",
                r.source,
            )
            for r in result.records
        ]
        header = ("sequence", "sub", "event type", "event id", "poison", "from")
        widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
        for row in [header, *rows]:
            print(
                "  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip(),
                file=out,
            )
        if result.missing:
            print(
                f"  {result.missing} Kinesis record(s) of the batch are neither archived nor "
                "on the stream",
                file=out,
            )
