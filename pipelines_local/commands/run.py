"""``pipeline run``: play Lambda's event source mappings locally for a workspace."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, TextIO

from pipelines_local.runtime import LocalRuntime, MappingStats, RunResult
from pipelines_local.workspace import DEFAULT_WORKSPACE, Workspace

_COLUMNS = (
    ("batches", "batches"),
    ("records_delivered", "delivered"),
    ("records_succeeded", "succeeded"),
    ("function_errors", "errors"),
    ("partial_failures", "partial"),
    ("retries", "retries"),
    ("bisections", "bisected"),
    ("records_dead_lettered", "dead-lettered"),
    ("records_expired", "expired"),
)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run the workspace's consumers: poll streams and queues, invoke the handlers",
        description="Reads the workspace's event source mappings and function configurations, "
        "polls every Kinesis shard and SQS queue and invokes each handler in this process, as "
        "Lambda would. Checkpoints are kept under the state directory, so a later run resumes "
        "where this one stopped.",
    )
    parser.add_argument(
        "--workspace",
        default=DEFAULT_WORKSPACE,
        help="Terraform workspace whose functions to run, as `pipeline up` deployed it "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--endpoint",
        metavar="URL",
        help="AWS-compatible endpoint (default: where `pipeline up` deployed the workspace)",
    )
    parser.add_argument(
        "--until-drained",
        action="store_true",
        help="return once every mapping has caught up and nothing is in flight",
    )
    parser.add_argument(
        "--max-seconds",
        type=float,
        metavar="N",
        help="stop after N seconds (with --until-drained: fail if not drained by then)",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        metavar="DIR",
        help="local state (default: $PIPELINE_STATE_DIR or .pipeline); checkpoints go to "
        "DIR/runtime/<workspace>/checkpoints.json",
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.set_defaults(func=run_consumers)


def run_consumers(args: argparse.Namespace, stdout: TextIO = sys.stdout) -> int:
    workspace = Workspace.load(args.workspace, args.state_dir, args.endpoint)
    runtime = workspace.runtime()
    try:
        result = runtime.run(until_drained=args.until_drained, max_seconds=args.max_seconds)
    except KeyboardInterrupt:
        _print_summary(_partial_result(runtime), args.json, stdout)
        return 130
    _print_summary(result, args.json, stdout)
    if args.until_drained and not result.drained:
        print(
            f"pipeline run: not drained after {result.seconds:.0f}s; run again to go on",
            file=sys.stderr,
        )
        return 1
    return 0


def _partial_result(runtime: LocalRuntime) -> RunResult:
    return RunResult(
        drained=False,
        seconds=0.0,
        stats=runtime.stats,
        mappings={p.mapping.label: p.stats for p in runtime.pollers},
    )


def _print_summary(result: RunResult, as_json: bool, out: TextIO) -> None:
    if as_json:
        print(json.dumps(result.to_dict(), indent=2, sort_keys=True), file=out)
        return
    rows = [*result.mappings.items(), ("total", result.stats)]
    width = max([len(name) for name, _ in rows] + [7])
    print(f"{'mapping':<{width}}  " + "  ".join(h for _, h in _COLUMNS), file=out)
    for name, stats in rows:
        print(f"{name:<{width}}  " + _cells(stats), file=out)
    state = "drained" if result.drained else "stopped"
    print(f"{state} after {result.seconds:.1f}s", file=out)


def _cells(stats: MappingStats) -> str:
    values = stats.to_dict()
    return "  ".join(f"{values[field]:>{len(header)}}" for field, header in _COLUMNS)
