"""``pipeline demo``: the main job, what ``make demo`` runs."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from pipelines_local.demo import DemoReport, run_demo


def register(subparsers: Any) -> None:
    demo = subparsers.add_parser(
        "demo",
        help="run the pipeline end to end on the embedded emulator",
        description="Starts the embedded emulator, applies Terraform (workspace 'local'), "
        "produces a seeded workload and prints a summary. Without --keep everything is "
        "torn down at the end.",
    )
    demo.add_argument("--events", type=int, default=5_000, help="events to produce (5000)")
    demo.add_argument("--seed", type=int, default=1, help="workload seed (1)")
    demo.add_argument("--workspace", default="local", help="Terraform workspace (local)")
    demo.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    demo.add_argument("--keep", action="store_true", help="leave the environment up afterwards")
    demo.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.events < 1:
        print("pipeline demo: --events must be at least 1", file=sys.stderr)
        return 2
    console = Console(stderr=True)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        tasks: dict[str, Any] = {}

        def progress(step: str, done: int, total: int | None) -> None:
            if step not in tasks:
                tasks[step] = bar.add_task(step, total=total)
            bar.update(tasks[step], completed=done, total=total)

        report = run_demo(
            args.events, args.seed, workspace=args.workspace, keep=args.keep, progress=progress
        )
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        _print_tables(report)
    return 0


def _print_tables(report: DemoReport) -> None:
    console = Console()
    table = Table(title=f"events by type (workspace {report.workspace}, seed {report.seed})")
    columns = {
        "produced": report.produced,
        "on the stream": report.on_stream,
        "projected": report.projected,
        "duplicates skipped": report.duplicates_skipped,
        "stale skipped": report.stale_skipped,
        "quarantined": report.quarantined,
        "dead-lettered": report.dead_lettered,
    }
    table.add_column("event type")
    for name in columns:
        table.add_column(name, justify="right")
    types = sorted(set().union(*(c.keys() for c in columns.values())))
    for event_type in types:
        table.add_row(event_type, *(f"{c.get(event_type, 0):,}" for c in columns.values()))
    table.add_row("total", *(f"{sum(c.values()):,}" for c in columns.values()))
    console.print(table)
    if report.alerts:
        alerts = Table(title="alerts by rule, against the injected cases")
        for name in ("rule", "injected", "caught", "missed", "extra"):
            alerts.add_column(name, justify="left" if name == "rule" else "right")
        for rule, score in report.alerts.items():
            alerts.add_row(
                rule, *(f"{score[k]:,}" for k in ("injected", "caught", "missed", "extra"))
            )
        console.print(alerts)
    for name, summary in (("lake", report.lake), ("archive", report.archive)):
        if summary:
            entries = (
                f" ({summary['events']:,} events and {summary['poison']:,} poison records)"
                if "events" in summary
                else ""
            )
            console.print(
                f"{name}: {summary['objects']:,} objects, {summary['partitions']:,} partitions, "
                f"{summary['bytes']:,} bytes{entries}"
            )
    if report.daily_analytics:
        daily = Table(title="daily analytics (the named Athena query, run locally)")
        for column in report.daily_analytics[0]:
            daily.add_column(column, justify="right")
        for row in report.daily_analytics:
            daily.add_row(*(str(v) for v in row.values()))
        console.print(daily)
    shards = ", ".join(f"{s}: {n:,}" for s, n in sorted(report.shards.items()))
    console.print(
        f"stream {report.stream_name}: {report.kinesis_records} Kinesis records; {shards}"
    )
    stats = report.runtime.get("stats", {})
    console.print(
        f"local runtime: {stats.get('batches', 0)} batches, "
        f"{stats.get('retries', 0)} retries, {stats.get('function_errors', 0)} function errors"
    )
    replay = report.replay
    if replay:
        outcome = (
            "no table, lake table or archive object changed"
            if replay["unchanged"]
            else f"CHANGED: {', '.join(replay['changed'])}"
        )
        console.print(
            f"replay {replay['replay_id']}: {replay['events']:,} events re-put from the "
            f"archive and consumed again; {outcome}"
        )
    rebuild = report.rebuild
    if rebuild:
        items = sum(t["shadow_items"] for t in rebuild["tables"].values())
        verdict = (
            "equal to the live tables"
            if rebuild["same"]
            else "DIFFERENT from the live tables (pipeline replay status --json)"
        )
        console.print(
            f"rebuild {rebuild['replay_id']}: {rebuild['events']:,} archived events projected "
            f"into {len(rebuild['tables'])} shadow tables ({items:,} items) in "
            f"{rebuild['rebuild_seconds']:.1f} s; {verdict}"
        )
    console.print(
        f"{report.events_per_second:,.0f} events/s end to end (produce + consume); "
        f"steps (s): {report.seconds}"
    )
    if report.kept:
        console.print(f"kept: the emulator is at {report.endpoint_url} (pipeline down to remove)")
