"""``pipeline lake compact``: rewrite the lake's closed partitions into few files, once each.

What the scheduled compactor does on AWS, run by hand against a workspace: every closed
partition with files of several commits becomes one atomic rewrite with each event once,
then the tables' expired snapshots are removed and their orphan files deleted
(:mod:`pipelines.consumers.lake.compaction`).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any, TextIO

from pipelines_local.progress import Progress
from pipelines_local.workspace import DEFAULT_WORKSPACE, Workspace

if TYPE_CHECKING:
    from pipelines.adapters.stored_files import StoredFiles
    from pipelines.consumers.lake import LakeCatalog, TableCompaction


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "lake",
        help="maintain the lake's Iceberg tables (compaction, snapshot expiry, orphan files)",
        description="Maintenance of the lake's Iceberg tables, one per event type.",
    )
    commands = parser.add_subparsers(dest="lake_command", required=True, metavar="COMMAND")
    compact = commands.add_parser(
        "compact",
        help="rewrite closed partitions into few files, each event once; expire old snapshots",
        description="Rewrites every closed partition (dt before --before, by default today "
        "UTC) that holds files of more than one commit into files of the table's target size, "
        "keeping the first committed copy of each event_id, in one atomic commit per "
        "partition (redone from a fresh read if a writer commits meanwhile). Then removes "
        "the snapshots older than the retention (but the newest --keep-snapshots) and "
        "deletes the table's files nothing retained refers to, once older than "
        "--orphan-age-hours.",
    )
    compact.add_argument(
        "--table",
        action="append",
        metavar="NAME",
        help="a table (transaction_recorded) or event type (TransactionRecorded); "
        "repeatable (default: every table of the lake)",
    )
    compact.add_argument(
        "--before",
        type=_date,
        metavar="YYYY-MM-DD",
        help="compact partitions dated before this day (default: today, UTC)",
    )
    compact.add_argument("--workspace", default=DEFAULT_WORKSPACE, help="(default: %(default)s)")
    compact.add_argument(
        "--endpoint",
        metavar="URL",
        help="AWS-compatible endpoint (default: where `pipeline up` deployed the workspace)",
    )
    compact.add_argument(
        "--snapshot-retention-days", type=_positive, default=7, metavar="N", help="(default: 7)"
    )
    compact.add_argument(
        "--keep-snapshots", type=_positive, default=10, metavar="N", help="(default: 10)"
    )
    compact.add_argument(
        "--orphan-age-hours", type=_positive, default=72, metavar="N", help="(default: 72)"
    )
    compact.add_argument(
        "--no-expire",
        action="store_true",
        help="only compact: keep every snapshot and every file",
    )
    compact.add_argument("--json", action="store_true", help="print the reports as JSON")
    compact.set_defaults(func=compact_lake_tables)


def compact_lake_tables(
    args: argparse.Namespace,
    stdout: TextIO | None = None,
    *,
    lake: LakeCatalog | None = None,
    files: Callable[[str], StoredFiles] | None = None,
) -> int:
    """Run the compaction ``args`` asks for; ``lake`` and ``files`` replace the workspace's
    (a local catalog, in tests)."""
    from pipelines.adapters.stored_files import stored_files_for
    from pipelines.consumers.lake import Compactor, Retention, compact_lake

    if lake is None or files is None:
        workspace = Workspace.load(args.workspace, endpoint_url=args.endpoint)
        lake = lake or workspace.lake_catalog()
        s3 = workspace.client("s3")
        files = files or (lambda location: stored_files_for(location, s3))
    retention = Retention(
        snapshot_age=timedelta(days=args.snapshot_retention_days),
        snapshots_kept=args.keep_snapshots,
        orphan_age=timedelta(hours=args.orphan_age_hours),
    )
    compactor = Compactor(lake.catalog, files=files, retention=retention)
    with Progress() as shown:
        reports = compact_lake(
            lake,
            compactor,
            tables=args.table,
            before=args.before,
            expire=not args.no_expire,
            progress=lambda done, total, table: shown.update("compacting", done, total, table),
        )
    out = stdout or sys.stdout
    if args.json:
        print(json.dumps([r.to_dict() for r in reports], indent=2), file=out)
    else:
        _print(reports, out)
    return 0


def _print(reports: list[TableCompaction], out: TextIO) -> None:
    if not reports:
        print("no lake tables to compact", file=out)
        return
    header = ("table", "dt", "files", "rows", "duplicates", "attempts")
    rows = [
        (
            report.table,
            p.dt,
            f"{p.files_before} -> {p.files_after}",
            f"{p.rows_before} -> {p.rows_after}",
            str(p.duplicates_removed),
            str(p.attempts),
        )
        for report in reports
        for p in report.partitions
    ]
    if rows:
        widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
        for row in [header, *rows]:
            print(
                "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip(), file=out
            )
        print(file=out)
    for report in reports:
        skipped = "".join(f"; skipped dt={s.dt}: {s.reason}" for s in report.skipped)
        print(
            f"{report.table}: {len(report.partitions)} partitions compacted, "
            f"{report.snapshots_expired} snapshots expired, {report.orphans.files} orphan "
            f"files deleted ({_size(report.orphans.bytes)}){skipped}",
            file=out,
        )


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    value = n / 1024
    for unit in ("KiB", "MiB"):
        if value < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from exc


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from exc
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value
