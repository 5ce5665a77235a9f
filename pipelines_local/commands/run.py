"""``pipeline run``: play Lambda's event source mappings locally for a workspace."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from pipelines_local.progress import Progress
from pipelines_local.runtime import LocalRuntime, MappingStats, RunResult
from pipelines_local.workspace import DEFAULT_WORKSPACE, Workspace

# (heading, value): what a person wants of a run; --json has every counter.
_COLUMNS: tuple[tuple[str, Callable[[MappingStats], int]], ...] = (
    ("records", lambda s: s.records_succeeded),
    ("events", lambda s: s.events_succeeded),
    ("quarantined", lambda s: s.events_quarantined),
    ("errors", lambda s: s.function_errors + s.partial_failures),
    ("dead-lettered", lambda s: s.records_dead_lettered + s.records_discarded),
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
    prefix = f"{workspace.outputs.get('name_prefix', '')}-"
    try:
        with Progress() as progress:

            def report(rt: LocalRuntime) -> None:
                stats = rt.stats
                progress.update(
                    "consuming",
                    stats.events_succeeded,
                    None,
                    f"{stats.batches:,} batches, {stats.events_quarantined:,} quarantined",
                )

            result = runtime.run(
                until_drained=args.until_drained, max_seconds=args.max_seconds, progress=report
            )
    except KeyboardInterrupt:
        _print_summary(_partial_result(runtime), args.json, stdout, prefix, workspace.name)
        return 130
    _print_summary(result, args.json, stdout, prefix, workspace.name)
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


def _print_summary(
    result: RunResult, as_json: bool, out: TextIO, prefix: str = "", workspace: str = ""
) -> None:
    if as_json:
        print(json.dumps(result.to_dict(), indent=2, sort_keys=True), file=out)
        return
    if not result.mappings:
        print(f"no event source mappings in workspace {workspace!r}: nothing to run", file=out)
        return
    rows = [(short_label(name, prefix), stats) for name, stats in result.mappings.items()]
    rows.append(("total", result.stats))
    width = max(len(name) for name, _ in rows)
    print(f"{'consumer':<{width}}  " + "  ".join(h for h, _ in _COLUMNS), file=out)
    for name, stats in rows:
        cells = "  ".join(f"{value(stats):>{len(h)},}" for h, value in _COLUMNS)
        print(f"{name:<{width}}  {cells}", file=out)
    total = result.stats
    state = "drained" if result.drained else "stopped"
    print(f"{state} after {result.seconds:.1f} s", file=out)
    if any(s.events_succeeded > s.records_succeeded for s in result.mappings.values()):
        print(
            "records are Kinesis records; the producer aggregates many events into each",
            file=out,
        )
    poisoned = [s.events_quarantined for s in result.mappings.values() if s.events_quarantined]
    if poisoned:
        print(
            f"{max(poisoned):,} poison event(s) quarantined with their bytes by "
            f"{len(poisoned)} consumer(s):\n  pipeline quarantine list --workspace {workspace}",
            file=out,
        )
    if total.records_dead_lettered:
        print(
            f"{total.records_dead_lettered:,} record(s) dead-lettered after their retries:\n"
            f"  pipeline deadletters list --workspace {workspace}",
            file=out,
        )


def short_label(label: str, prefix: str) -> str:
    """``pipelines-dev-projector <- stream/pipelines-dev-events`` -> ``projector <- events``."""
    parts = [part.rsplit("/", 1)[-1] for part in label.split(" <- ")]
    if prefix and prefix != "-":
        parts = [part.removeprefix(prefix) for part in parts]
    return " <- ".join(parts)
