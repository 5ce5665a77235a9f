"""``pipeline logs FUNCTION``: a function's log lines, where its target keeps them.

On an endpoint (the embedded emulator, LocalStack) the functions run in the local runtime,
which writes each function's standard output to ``<state dir>/runtime/<workspace>/logs/
<function name>.log`` (:mod:`pipelines_local.runtime.logs`); on AWS the lines are the
function's CloudWatch log group (its ``LoggingConfig``, else ``/aws/lambda/<function>``),
read with ``FilterLogEvents``. Lines are printed as the function wrote them.

``--since`` keeps the lines of the last DURATION: a local line's time is its own (the
``timestamp`` of a Powertools JSON line, the ``_aws.Timestamp`` of an EMF line); a line
without one belongs with the timed line before it. ``--follow`` goes on printing new lines
until Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from pipelines_local.cli import UsageError
from pipelines_local.workspace import DEFAULT_WORKSPACE, Workspace

POLL_SECONDS = 1.0
AWS_DEFAULT_SINCE = timedelta(hours=1)
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "logs",
        help="print a function's logs (the local runtime's, or CloudWatch Logs on AWS)",
        description="Prints the log lines of one of the workspace's functions: on an endpoint, "
        "what the local runtime captured of its output; on AWS, its CloudWatch log group "
        "(the last hour unless --since says otherwise). FUNCTION is its name in Terraform "
        "(projector, alerter, lake-writer, lake-compactor, archiver) or its full name.",
    )
    parser.add_argument("function", metavar="FUNCTION", help="projector, lake-writer, ...")
    parser.add_argument("--workspace", default=DEFAULT_WORKSPACE, help="(default: %(default)s)")
    parser.add_argument(
        "--endpoint",
        metavar="URL",
        help="AWS-compatible endpoint (default: where `pipeline up` deployed the workspace)",
    )
    parser.add_argument(
        "--since",
        type=duration_arg,
        metavar="DURATION",
        help="only the last DURATION: 90s, 15m, 2h, 1d, 1h30m (default: everything kept "
        "locally; the last hour on AWS)",
    )
    parser.add_argument(
        "--follow", "-f", action="store_true", help="keep printing new lines until Ctrl-C"
    )
    parser.set_defaults(func=show_logs)


def parse_duration(text: str) -> timedelta:
    """``90s``, ``15m``, ``2h``, ``1d``, ``1w``, combined (``1h30m``); a bare number is
    seconds."""
    cleaned = text.strip().lower().replace(" ", "")
    if re.fullmatch(r"\d+(\.\d+)?", cleaned):
        return timedelta(seconds=float(cleaned))
    parts = _DURATION.findall(cleaned)
    if not cleaned or "".join(n + u for n, u in parts) != cleaned:
        raise ValueError(f"not a duration: {text!r} (say 90s, 15m, 2h, 1d or 1h30m)")
    return timedelta(seconds=sum(float(n) * _UNITS[u] for n, u in parts))


def duration_arg(text: str) -> timedelta:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def resolve_function(functions: Mapping[str, str], wanted: str) -> tuple[str, str]:
    """``(key, name)`` of the function ``wanted`` names: its key in Terraform (``_`` for
    ``-`` allowed) or its full name. Raises :class:`UsageError` listing the known ones."""
    for key, name in functions.items():
        if wanted in (key, name) or wanted.replace("_", "-") == key:
            return key, name
    known = ", ".join(f"{k} ({n})" for k, n in sorted(functions.items()))
    raise UsageError(f"no function {wanted!r} in the workspace; it has {known or 'none'}")


# --- local lines --------------------------------------------------------------------------


def line_time(line: str) -> float | None:
    """The time a log line carries (epoch seconds), if it carries one."""
    text = line.strip()
    if not text.startswith("{"):
        return None
    try:
        blob = json.loads(text)
    except ValueError:
        return None
    if not isinstance(blob, dict):
        return None
    emf = blob.get("_aws")
    if isinstance(emf, dict) and isinstance(emf.get("Timestamp"), int | float):
        return float(emf["Timestamp"]) / 1000
    stamp = blob.get("timestamp")
    if isinstance(stamp, int | float):
        return float(stamp) / 1000 if stamp > 10**11 else float(stamp)
    if isinstance(stamp, str):
        try:
            moment = datetime.fromisoformat(stamp.replace(",", ".").replace("Z", "+00:00"))
        except ValueError:
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.timestamp()
    return None


def lines_since(lines: Iterable[str], since: float | None) -> Iterator[str]:
    """The lines at or after ``since`` (all for None); an untimed line goes with the timed
    line before it (lines before the first timed one count as old)."""
    keep = since is None
    for line in lines:
        moment = line_time(line)
        if moment is not None:
            keep = since is None or moment >= since
        if keep:
            yield line


def follow_file(
    path: Path,
    out: TextIO,
    *,
    since: float | None,
    follow: bool,
    sleep: Callable[[float], None] = time.sleep,
    keep_going: Callable[[], bool] = lambda: True,
) -> int:
    """Print ``path``'s lines (those of ``since``), then, with ``follow``, what is appended
    (from the start again if the file is replaced or cut). Returns lines printed."""
    printed = 0
    position = 0
    identity: tuple[int, int] | None = None
    partial = ""
    first = True  # the lines already there: those of ``since`` only
    while True:
        if path.is_file():
            stat = path.stat()
            if identity != (stat.st_dev, stat.st_ino) or stat.st_size < position:
                identity, position, partial = (stat.st_dev, stat.st_ino), 0, ""
            if stat.st_size > position:
                with path.open("r", encoding="utf-8", errors="replace") as handle:
                    handle.seek(position)
                    chunk = handle.read()
                    position = handle.tell()
                *lines, partial = (partial + chunk).split("\n")
                for line in lines_since(lines, since) if first else lines:
                    out.write(line + "\n")
                    printed += 1
                out.flush()
            first = False
        if not follow or not keep_going():
            if partial:  # a last line without its newline yet
                out.write(partial + "\n")
                printed += 1
            return printed
        sleep(POLL_SECONDS)


# --- CloudWatch Logs ----------------------------------------------------------------------


def log_group_of(lambda_client: Any, function: str) -> str:
    """The function's log group: its ``LoggingConfig``'s, else Lambda's default."""
    config = lambda_client.get_function_configuration(FunctionName=function)
    group = (config.get("LoggingConfig") or {}).get("LogGroup")
    return str(group or f"/aws/lambda/{function}")


def follow_cloudwatch(
    logs: Any,
    group: str,
    out: TextIO,
    *,
    start_ms: int,
    follow: bool,
    sleep: Callable[[float], None] = time.sleep,
    keep_going: Callable[[], bool] = lambda: True,
) -> int:
    """Print the group's events from ``start_ms`` in time order; with ``follow``, poll for
    more (events of the same millisecond seen before are not printed twice)."""
    printed = 0
    seen: dict[str, int] = {}  # event id -> timestamp, of the events at or after start_ms
    while True:
        paginator = logs.get_paginator("filter_log_events")
        for page in paginator.paginate(logGroupName=group, startTime=start_ms):
            for event in sorted(page.get("events", []), key=lambda e: e["timestamp"]):
                if event["eventId"] in seen:
                    continue
                seen[event["eventId"]] = int(event["timestamp"])
                out.write(str(event["message"]).rstrip("\n") + "\n")
                printed += 1
        out.flush()
        if not follow or not keep_going():
            return printed
        start_ms = max([start_ms, *seen.values()])  # the same millisecond again, not older
        seen = {k: t for k, t in seen.items() if t >= start_ms}
        sleep(POLL_SECONDS * 2)


# --- the command --------------------------------------------------------------------------


def show_logs(args: argparse.Namespace, stdout: TextIO | None = None) -> int:
    out = stdout or sys.stdout
    workspace = Workspace.load(args.workspace, endpoint_url=args.endpoint)
    functions = {str(k): str(v) for k, v in dict(workspace.output("function_names")).items()}
    key, name = resolve_function(functions, args.function)
    now = time.time()
    try:
        if workspace.endpoint_url is not None:
            path = workspace.log_dir / f"{name}.log"
            if not path.is_file() and not args.follow:
                print(
                    f"pipeline logs: no logs of {key} yet: the local runtime writes {path} "
                    "when it invokes the function (`pipeline run`)",
                    file=sys.stderr,
                )
                return 0
            since = now - args.since.total_seconds() if args.since else None
            follow_file(path, out, since=since, follow=args.follow)
        else:
            window = args.since or AWS_DEFAULT_SINCE
            group = log_group_of(workspace.client("lambda"), name)
            start_ms = int((now - window.total_seconds()) * 1000)
            follow_cloudwatch(
                workspace.client("logs"), group, out, start_ms=start_ms, follow=args.follow
            )
    except KeyboardInterrupt:
        return 130
    return 0
