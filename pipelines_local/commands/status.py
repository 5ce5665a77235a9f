"""``pipeline status``: what a workspace holds and how far behind its consumers are.

The figures are gathered by :mod:`pipelines_local.status` (where each comes from, and the
JSON document ``--json`` prints); this module lays them out as text that fits 80 columns
(the terminal's width on a terminal): long names wrap at their hyphens, never cut.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from collections.abc import Sequence
from typing import Any, TextIO

from pipelines_local.status import gather_status
from pipelines_local.workspace import DEFAULT_WORKSPACE, Workspace

WIDTH = 80
_INDENT = "  "
_GAP = "  "

# A line of output and how a terminal shows it: None, "title", "heading", "good", "bad".
Line = tuple[str, str | None]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "status",
        help="what a workspace holds: consumers' lag, quarantine, dead letters, alerts, lake",
        description="Reads, without changing anything: the workspace's stack outputs, its "
        "endpoint, each shard's latest sequence number and each consumer's position and lag "
        "(the local runtime's checkpoints on an endpoint; the mappings' state and CloudWatch "
        "IteratorAge on AWS), the quarantined records, the messages on every dead-letter "
        "queue, the latest alerts of the alerts table, each lake table's rows and files from "
        "its Iceberg snapshot summary, and the archive's size.",
    )
    parser.add_argument("--workspace", default=DEFAULT_WORKSPACE, help="(default: %(default)s)")
    parser.add_argument(
        "--endpoint",
        metavar="URL",
        help="AWS-compatible endpoint (default: where `pipeline up` deployed the workspace)",
    )
    parser.add_argument(
        "--json", action="store_true", help="print the status document (version 1) as JSON"
    )
    parser.set_defaults(func=show_status)


def show_status(args: argparse.Namespace, stdout: TextIO | None = None) -> int:
    out = stdout or sys.stdout
    workspace = Workspace.load(args.workspace, endpoint_url=args.endpoint)
    doc = gather_status(workspace)
    if args.json:
        print(json.dumps(doc, indent=2), file=out)
        return 0
    if out.isatty():
        from rich.console import Console
        from rich.text import Text

        console = Console(file=out, highlight=False)
        width = max(60, min(console.width, 120))
        for text, style in render_status(doc, width):
            console.print(Text(text, style=_STYLES.get(style or "", "")), soft_wrap=True)
    else:
        out.write(format_status(doc))
    return 0


_STYLES = {"title": "bold", "heading": "bold cyan", "good": "green", "bad": "bold red"}


def format_status(doc: dict[str, Any], width: int = WIDTH) -> str:
    """The status as plain text, every line at most ``width`` characters."""
    return "".join(f"{text}\n" for text, _ in render_status(doc, width))


# --- layout helpers -----------------------------------------------------------------------


def count(n: int | None, lower_bound: bool = False) -> str:
    if n is None:
        return "n/a"
    return f"{n:,}+" if lower_bound else f"{n:,}"


def size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    value = float(n)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if value < 1024 or unit == "TiB":
            return f"{value:.1f} {unit}"
    raise AssertionError("unreachable")


def duration(seconds: float | None) -> str:
    """``4s``, ``2m 05s``, ``3h 07m``, ``2d 04h``."""
    if seconds is None:
        return "n/a"
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    minutes, s = divmod(s, 60)
    if minutes < 60:
        return f"{minutes}m {s:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours:02d}h"


def clock(iso_time: str | None) -> str:
    """``2026-12-04T20:25:28Z`` (or with milliseconds) as ``2026-12-04 20:25:28``."""
    if not iso_time:
        return "-"
    return iso_time.replace("T", " ").rstrip("Z").split(".")[0]


def wrap(text: str, width: int, indent: str = _INDENT, hanging: str | None = None) -> list[str]:
    """``text`` in lines of at most ``width``, after ``indent`` (then ``hanging``)."""
    return textwrap.wrap(
        text,
        width=width,
        initial_indent=indent,
        subsequent_indent=hanging if hanging is not None else indent + "  ",
        break_on_hyphens=True,
        break_long_words=True,
    ) or [indent.rstrip()]


def table(
    rows: Sequence[Sequence[str]],
    width: int,
    *,
    headers: Sequence[str] | None = None,
    right: Sequence[int] = (),
    indent: str = _INDENT,
) -> list[str]:
    """Rows in aligned columns within ``width``: the widest left-aligned column wraps (at
    hyphens and spaces, then anywhere) when the whole would not fit."""
    every = [list(headers)] if headers else []
    every += [list(r) for r in rows]
    if not every:
        return []
    columns = len(every[0])
    widths = [max(len(r[c]) for r in every) for c in range(columns)]
    total = len(indent) + sum(widths) + len(_GAP) * (columns - 1)
    if total > width:
        candidates = [c for c in range(columns) if c not in right]
        widest = max(candidates or range(columns), key=lambda c: widths[c])
        widths[widest] = max(8, widths[widest] - (total - width))
    lines = []
    for row in every:
        cells = [
            textwrap.wrap(cell, widths[c], break_on_hyphens=True) or [""]
            for c, cell in enumerate(row)
        ]
        for n in range(max(len(c) for c in cells)):
            parts = []
            for c, cell in enumerate(cells):
                text = cell[n] if n < len(cell) else ""
                parts.append(text.rjust(widths[c]) if c in right else text.ljust(widths[c]))
            lines.append((indent + _GAP.join(parts)).rstrip())
    return lines


def _plain(lines: list[str], style: str | None = None) -> list[Line]:
    return [(line, style) for line in lines]


def _error(section: dict[str, Any], width: int) -> list[Line]:
    return _plain(wrap(f"not available: {section['error']}", width), "bad")


# --- the sections -------------------------------------------------------------------------


def render_status(doc: dict[str, Any], width: int = WIDTH) -> list[Line]:
    """The status as lines of at most ``width`` characters, each with its style."""
    lines: list[Line] = []
    for part in (
        _header,
        _deployed,
        _consumers,
        _shards,
        _quarantine,
        _dead_letters,
        _alerts,
        _lake,
        _archive,
    ):
        block = part(doc, width)
        if block:
            if lines:
                lines.append(("", None))
            lines.extend(block)
    return lines


_TARGETS = {
    "embedded": "embedded emulator",
    "endpoint": "AWS-compatible endpoint",
    "aws": "AWS",
}


def _header(doc: dict[str, Any], width: int) -> list[Line]:
    target = _TARGETS.get(doc["target"], doc["target"])
    title = f"workspace {doc['workspace']} on {target}, {doc['region']}"
    lines = _plain(wrap(title, width, indent="", hanging="  "), "title")
    lines += _plain(wrap(f"as of {clock(doc['generated_at'])} UTC", width, indent=""))
    endpoint = doc.get("endpoint")
    if endpoint:
        pid = f", pid {endpoint['pid']}" if endpoint.get("pid") else ""
        if endpoint["answers"]:
            lines += _plain(wrap(f"endpoint {endpoint['url']} answers{pid}", width, ""), "good")
        else:
            text = f"endpoint {endpoint['url']} does not answer{pid}: {endpoint['error']}"
            lines += _plain(wrap(text, width, ""), "bad")
    return lines


def _deployed(doc: dict[str, Any], width: int) -> list[Line]:
    d = doc["deployed"]
    rows: list[list[str]] = []
    stream = d["stream"]["name"] or "-"
    shards = doc.get("stream", {}).get("shards")
    if isinstance(shards, list):
        stream += f" ({len(shards)} shard{'s' if len(shards) != 1 else ''})"
    rows.append(["stream", "", stream])
    for label, key in (
        ("functions", "functions"),
        ("tables", "tables"),
        ("buckets", "buckets"),
        ("topics", "topics"),
    ):
        for n, (name, value) in enumerate(d[key].items()):
            rows.append([label if n == 0 else "", name, value])
    if d.get("glue_database"):
        rows.append(["lake", "database", d["glue_database"]])
    return [("Deployed", "heading"), *_plain(table(rows, width))]


def _lag_text(c: dict[str, Any]) -> tuple[str, str]:
    """(records behind, age) of a consumer or of its position on one shard."""
    behind = count(c["records_behind"], c["records_behind_is_lower_bound"])
    if c["records_behind"] is None:
        age = duration(c["age_seconds"]) if c["age_seconds"] is not None else "n/a"
    elif c["records_behind"] == 0:
        age = "-"
    else:
        age = duration(c["age_seconds"])
    return behind, age


def _consumers(doc: dict[str, Any], width: int) -> list[Line]:
    stream = doc["stream"]
    head: list[Line] = [("Consumers", "heading")]
    if "error" in stream:
        return head + _error(stream, width)
    if not stream["consumers"]:
        return head + _plain(wrap("no event source mapping reads the stream", width))
    rows = []
    for c in stream["consumers"]:
        behind, age = _lag_text(c)
        state = c["state"]
        if c.get("last_processing_result"):
            state += f" ({c['last_processing_result']})"
        rows.append([c["consumer"], state, behind, age])
    local = stream["checkpoints"] == "local-runtime"
    headers = [
        "consumer",
        "mapping",
        "behind",
        "age of oldest unprocessed" if local else "iterator age",
    ]
    lines = head + _plain(table(rows, width, headers=headers, right=(2,)))
    lines += _plain(wrap(f"({stream['note']})", width, hanging="   "))
    return lines


def _shards(doc: dict[str, Any], width: int) -> list[Line]:
    stream = doc["stream"]
    if "error" in stream or not stream["shards"]:
        return []
    lines: list[Line] = [("Shards", "heading")]
    local = stream["checkpoints"] == "local-runtime"
    for shard in stream["shards"]:
        state = "open" if shard["open"] else "closed"
        parent = f", child of {shard['parent_shard_id']}" if shard.get("parent_shard_id") else ""
        lines += _plain(wrap(f"{shard['shard_id']} ({state}{parent})", width))
        latest = shard["latest_sequence_number"]
        if not local:
            continue
        if latest is None:
            latest_text = f"beyond the first {stream['read_limit']:,} records read"
        else:
            latest_text = latest
        rows = [["latest", latest_text]]
        for c in shard["consumers"]:
            behind, age = _lag_text(c)
            if c["records_behind"] is None:
                where = "no checkpoint yet"
            elif c["records_behind"] == 0:
                where = "at latest" if c["checkpoint"] is not None else "nothing to read"
            else:
                where = f"{behind} behind, oldest arrived {age} ago, checkpoint "
                where += c["checkpoint"] or "none (reads from the trim horizon)"
            rows.append([c["consumer"], where])
        lines += _plain(table(rows, width, indent="    "))
    return lines


def _quarantine(doc: dict[str, Any], width: int) -> list[Line]:
    q = doc["quarantine"]
    head: list[Line] = [("Quarantine", "heading")]
    if "error" in q:
        return head + _error(q, width)
    n = count(q["records"], q["is_lower_bound"])
    text = f"{n} record{'s' if q['records'] != 1 else ''} in s3://{q['bucket']}"
    lines = head + _plain(wrap(text, width), "bad" if q["records"] else None)
    if q["by_consumer"]:
        parts = ", ".join(f"{k} {v:,}" for k, v in q["by_consumer"].items())
        lines += _plain(wrap(f"by consumer: {parts}", width))
    return lines


def _dead_letters(doc: dict[str, Any], width: int) -> list[Line]:
    dl = doc["dead_letters"]
    head: list[Line] = [("Dead letters", "heading")]
    if "error" in dl:
        return head + _error(dl, width)
    if not dl["queues"]:
        return head + _plain(wrap("no dead-letter queue found", width))
    rows = [
        [q["queue"], ", ".join(q["for"]), f"{q['messages']:,}", f"{q['in_flight']:,}"]
        for q in dl["queues"]
    ]
    headers = ["queue", "for", "messages", "in flight"]
    return head + _plain(table(rows, width, headers=headers, right=(2, 3)))


def _alerts(doc: dict[str, Any], width: int) -> list[Line]:
    a = doc["alerts"]
    head: list[Line] = [("Alerts", "heading")]
    if "error" in a:
        return head + _error(a, width)
    recorded = count(a["recorded"], a["is_lower_bound"])
    text = f"{recorded} recorded in {a['table']}"
    if a["unpublished"]:
        text += f", {a['unpublished']:,} not published"
    if a["latest"]:
        text += f"; the latest {len(a['latest'])}:"
    lines = head + _plain(wrap(text, width))
    rows = [
        [clock(x["recorded_at"]), x["severity"] or "-", x["rule"] or "-", x["subject"] or "-"]
        for x in a["latest"]
    ]
    if rows:
        headers = ["recorded (UTC)", "severity", "rule", "subject"]
        lines += _plain(table(rows, width, headers=headers))
    return lines


def _lake(doc: dict[str, Any], width: int) -> list[Line]:
    lake = doc["lake"]
    head: list[Line] = [("Lake", "heading")]
    if "error" in lake:
        return head + _error(lake, width)
    rows = []
    for t in lake["tables"]:
        if not t["created"]:
            rows.append([t["table"], "-", "-", "-", "not created yet"])
            continue
        files = f"{t['data_files']:,}"
        if t["delete_files"]:
            files += f" +{t['delete_files']:,} del"
        rows.append(
            [t["table"], f"{t['rows']:,}", files, size(t["bytes"]), clock(t["last_commit"])]
        )
    headers = ["table", "rows", "files", "size", "last commit (UTC)"]
    lines = head + _plain(wrap(f"Iceberg tables of {lake['database']}:", width))
    return lines + _plain(table(rows, width, headers=headers, right=(1, 2, 3)))


def _archive(doc: dict[str, Any], width: int) -> list[Line]:
    a = doc["archive"]
    head: list[Line] = [("Archive", "heading")]
    if "error" in a:
        return head + _error(a, width)
    objects = count(a["objects"], a["is_lower_bound"])
    plural = "s" if a["objects"] != 1 else ""
    text = f"{objects} object{plural}, {size(a['bytes'])} in s3://{a['bucket']}/{a['prefix']}"
    return head + _plain(wrap(text, width))
