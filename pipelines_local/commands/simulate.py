"""``pipeline simulate``: a realistic, reproducible workload, through the producer."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from typing import Any

from pipelines.stream.producer import Producer
from pipelines_local.simulator import simulate
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
    workload = simulate(args.events, args.seed)
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
            f"{len(workload.events):,} events in {summary['kinesis_records']} records to {stream} "
            f"in {seconds:.1f} s ({summary['events_per_second']:,} events/s)"
        )
    return 0
