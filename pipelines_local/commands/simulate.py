"""``pipeline simulate``: a realistic, reproducible workload, through the producer."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from pipelines.stream.producer import Producer
from pipelines_local.cli import UsageError
from pipelines_local.simulator import SPAN, default_start, simulate
from pipelines_local.workspace import DEFAULT_WORKSPACE, Workspace

_CHUNK = 10_000


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "simulate",
        help="produce a seeded mix of all six event types to a workspace's stream",
        description="Users registering then updating their profiles, activity sessions, metrics "
        "per host with some anomalies, transactions per user with some fraud patterns, and "
        "image labels: the same events for the same --events and --seed.",
    )
    parser.add_argument("--events", type=int, required=True, help="how many events")
    parser.add_argument("--seed", type=int, default=1, help="workload seed (default: 1)")
    parser.add_argument(
        "--start",
        type=_start_time,
        metavar="TIME",
        help="event time of the first event, ISO 8601, UTC unless it says otherwise (default: "
        f"today's midnight UTC less {SPAN.days} days, so the events end at midnight, inside "
        "the daily analytics' seven days; the same day gives the same events)",
    )
    parser.add_argument("--workspace", default=DEFAULT_WORKSPACE, help="(default: %(default)s)")
    parser.add_argument(
        "--endpoint",
        metavar="URL",
        help="AWS endpoint (default: where `pipeline up` deployed the workspace)",
    )
    parser.add_argument("--stream", help="stream name (default: the workspace's event stream)")
    parser.add_argument("--no-aggregate", action="store_true", help="one event per record")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.events < 1:
        print("pipeline simulate: --events must be at least 1", file=sys.stderr)
        return 2
    workspace = Workspace.load(args.workspace, endpoint_url=args.endpoint)
    kinesis = workspace.client("kinesis")
    stream = args.stream or workspace.stream_name
    _check_stream(kinesis, stream, workspace)
    start = args.start or default_start()
    if start > datetime.now(UTC):
        raise UsageError(f"--start {start.isoformat()} is in the future; events cannot be")
    workload = simulate(args.events, args.seed, start=start)
    producer = Producer(kinesis, stream, aggregate=not args.no_aggregate)
    started = time.perf_counter()
    shards: Counter[str] = Counter()
    for start in range(0, len(workload.events), _CHUNK):
        for placement in producer.put_events(workload.events[start : start + _CHUNK]):
            shards[placement.shard_id] += 1
    seconds = time.perf_counter() - started
    produced = dict(sorted(Counter(e["metadata"]["event_type"] for e in workload.events).items()))
    summary: dict[str, Any] = {
        "stream": stream,
        "endpoint_url": workspace.endpoint_url,
        "first_event_at": _iso(workload.events[0]["metadata"]["occurred_at"]),
        "last_event_at": _iso(workload.events[-1]["metadata"]["occurred_at"]),
        "produced": produced,
        "injected": {rule: len(ids) for rule, ids in workload.injected.items()},
        "shards": dict(sorted(shards.items())),
        "kinesis_records": producer.stats["records"],
        "seconds": round(seconds, 2),
        "events_per_second": round(len(workload.events) / seconds, 1) if seconds else None,
    }
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        for event_type, n in produced.items():
            print(f"{event_type:<22} {n:>8,}")
        print(
            f"{len(workload.events):,} events to {stream} in {seconds:.1f} s "
            f"({summary['events_per_second']:,.0f} events/s)"
        )
        print(f"aggregated into {summary['kinesis_records']:,} Kinesis records (many events each)")
        print(f"event time {summary['first_event_at']} to {summary['last_event_at']}")
    return 0


def _start_time(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO 8601 time (e.g. 2026-11-01 or 2026-11-01T08:00:00Z)"
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _check_stream(kinesis: Any, stream: str, workspace: Workspace) -> None:
    """A clear error, before producing anything, when the stream is not there."""
    try:
        kinesis.describe_stream_summary(StreamName=stream)
    except kinesis.exceptions.ResourceNotFoundException:
        where = workspace.endpoint_url or f"AWS ({workspace.region})"
        raise UsageError(
            f"no stream {stream!r} at {where}; workspace {workspace.name!r} streams to "
            f"{workspace.stream_name!r}"
        ) from None
