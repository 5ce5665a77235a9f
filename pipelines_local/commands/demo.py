"""``pipeline demo``: the main job, what ``make demo`` runs."""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from typing import Any, TextIO

from pipelines_local.demo import DemoReport, run_demo
from pipelines_local.emulator import emulator_env
from pipelines_local.progress import Progress


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


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    if args.events < 1:
        print("pipeline demo: --events must be at least 1", file=sys.stderr)
        return 2
    with Progress() as progress:
        report = run_demo(
            args.events,
            args.seed,
            workspace=args.workspace,
            keep=args.keep,
            progress=progress.callback(),
        )
    if args.json:
        print(json.dumps(report.to_dict(), indent=2), file=out)
    else:
        for line in summary_lines(report):
            print(line, file=out)
    return 0


# (first heading line, second heading line, the report's counts by event type)
_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("", "produced", "produced"),
    ("", "projected", "projected"),
    ("duplicate", "skipped", "duplicates_skipped"),
    ("stale", "skipped", "stale_skipped"),
    ("quaran-", "tined", "quarantined"),
    ("dead-", "lettered", "dead_lettered"),
)
_NUMBER = 9  # width of the alerts' count columns
WIDTH = 79


def summary_lines(report: DemoReport) -> list[str]:
    """The demo's summary as plain lines, none wider than 79 columns, piped or not."""
    lines = [f"Events by type (workspace {report.workspace}, seed {report.seed})", ""]
    counts = [getattr(report, attribute) for _, _, attribute in _COLUMNS]
    widths = [max(len(top), len(low), 7) for top, low, _ in _COLUMNS]
    types = sorted(set().union(*(c.keys() for c in counts)))
    name = max([len("event type"), len("total"), *(len(t) for t in types)])

    def row(label: str, cells: list[str]) -> str:
        return f"{label:<{name}}" + "".join(
            f" {c:>{w}}" for c, w in zip(cells, widths, strict=True)
        )

    lines.append(row("", [top for top, _, _ in _COLUMNS]))
    lines.append(row("event type", [low for _, low, _ in _COLUMNS]))
    for event_type in types:
        lines.append(row(event_type, [f"{c.get(event_type, 0):,}" for c in counts]))
    lines.append(row("total", [f"{sum(c.values()):,}" for c in counts]))
    read_back = sum(report.on_stream.values())
    produced = sum(report.produced.values())
    lines.append("")
    shards = ", ".join(f"{s} {n:,}" for s, n in sorted(report.shards.items()))
    lines += _wrap(
        f"Stream {report.stream_name}: {produced:,} events in {report.kinesis_records:,} "
        "Kinesis records, because the producer aggregates many events into each record "
        f"(KPL format); {read_back:,} events read back"
        + (" (all of them)." if read_back == produced else " (MISSING SOME).")
        + (f" Records per shard: {shards}." if shards else "")
    )
    if report.alerts:
        lines += ["", "Alerts by rule, against the cases the simulator injected", ""]
        rule = max(len("rule"), *(len(r) for r in report.alerts))
        heads = ("injected", "caught", "missed", "extra")
        lines.append(f"{'rule':<{rule}}" + "".join(f" {h:>{_NUMBER}}" for h in heads))
        for name_of, score in report.alerts.items():
            lines.append(f"{name_of:<{rule}}" + "".join(f" {score[h]:>{_NUMBER},}" for h in heads))
    lines.append("")
    for label, summary in (("Lake", report.lake), ("Archive", report.archive)):
        if summary:
            entries = (
                f", holding {summary['events']:,} events and {summary['poison']:,} poison records"
                if "events" in summary
                else ""
            )
            lines += _wrap(
                f"{label}: {summary['objects']:,} objects in {summary['partitions']:,} "
                f"partitions, {_bytes(summary['bytes'])}{entries}."
            )
    if report.daily_analytics:
        lines += ["", "Daily analytics (the named Athena query, run locally)", ""]
        lines += _grid(report.daily_analytics)
    stats = report.runtime.get("stats", {})
    lines.append("")
    lines += _wrap(
        f"Local runtime: {stats.get('batches', 0):,} batches, {stats.get('retries', 0):,} "
        f"retries, {stats.get('function_errors', 0):,} function errors."
    )
    replay = report.replay
    if replay:
        outcome = (
            "no table, lake table or archive object changed"
            if replay["unchanged"]
            else f"CHANGED: {', '.join(replay['changed'])}"
        )
        lines += _wrap(
            f"Replay {replay['replay_id']}: {replay['events']:,} events put again from the "
            f"archive and consumed again; {outcome}."
        )
    rebuild = report.rebuild
    if rebuild:
        items = sum(t["shadow_items"] for t in rebuild["tables"].values())
        verdict = (
            "equal to the live tables"
            if rebuild["same"]
            else "DIFFERENT from the live tables (pipeline replay status --json)"
        )
        lines += _wrap(
            f"Rebuild {rebuild['replay_id']}: {rebuild['events']:,} archived events projected "
            f"into {len(rebuild['tables'])} shadow tables ({items:,} items) in "
            f"{rebuild['rebuild_seconds']:.1f} s; {verdict}."
        )
    steps = ", ".join(f"{step} {_seconds(v)}" for step, v in report.seconds.items())
    lines += _wrap(
        f"{report.events_per_second:,.0f} events/s end to end (produce and consume). "
        f"Time by step: {steps}."
    )
    if report.kept:
        lines += _wrap(
            f"Kept: the emulator is at {report.endpoint_url} (`pipeline down` removes it). "
            "The AWS CLI and SDKs reach it with:"
        )
        env = emulator_env(report.endpoint_url)
        lines += [f"  export {name}={env[name]}" for name in sorted(env)]
    return lines


def _grid(rows: list[dict[str, Any]]) -> list[str]:
    """Rows of a query as a plain table; floats to two places."""
    columns = list(rows[0])
    cells = [[_cell(row[c]) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    out = ["  ".join(f"{c:>{w}}" for c, w in zip(columns, widths, strict=True))]
    out += ["  ".join(f"{v:>{w}}" for v, w in zip(r, widths, strict=True)) for r in cells]
    return out


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return "" if value is None else str(value)


def _seconds(value: float) -> str:
    return f"{value:.0f} s" if value >= 10 else f"{value:.1f} s"


def _bytes(size: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size:,} bytes"


def _wrap(text: str) -> list[str]:
    return textwrap.wrap(text, WIDTH, break_on_hyphens=False, break_long_words=False)
