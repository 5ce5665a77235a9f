"""``pipeline up`` / ``pipeline down``: bring a Terraform workspace up or down.

Without ``--endpoint`` the stack goes to the embedded emulator, started in the background
on first use; with one (``http://localhost:4566`` for LocalStack) it goes there.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from typing import Any, TextIO

from pipelines_local.infra.stack import DEFAULT_WORKSPACE, UpResult, down, up
from pipelines_local.progress import Progress
from pipelines_local.workspace import Workspace


def register(subparsers: Any) -> None:
    up_parser = subparsers.add_parser(
        "up",
        help="apply the stack to a workspace on the emulator (started if needed) or an endpoint",
        description="Applies the Terraform root module to a workspace (one per environment). "
        "Without --endpoint it starts the embedded emulator if none is running. terraform init "
        "installs the AWS provider from the local mirror only, the workspace is selected or "
        "created, and the apply uses terraform/workspaces/<name>.tfvars (else local.tfvars) "
        "and the tables of any promoted rebuild. The outputs are recorded under the state "
        "folder for the other commands, and the lake's Iceberg tables are created.",
    )
    _add_common(up_parser)
    up_parser.set_defaults(func=run_up)

    down_parser = subparsers.add_parser(
        "down",
        help="destroy a workspace and stop the emulator `up` started once it is empty",
        description="Drops the shadow tables rebuilds left, destroys everything Terraform "
        "created in the workspace, deletes the workspace and forgets its record. The embedded "
        "emulator stops once no workspace on it holds anything.",
    )
    _add_common(down_parser)
    down_parser.set_defaults(func=run_down)


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--workspace",
        default=DEFAULT_WORKSPACE,
        help="Terraform workspace (environment); settings from terraform/workspaces/<name>.tfvars "
        f"if it exists, else {DEFAULT_WORKSPACE}.tfvars (default: %(default)s)",
    )
    parser.add_argument(
        "--endpoint",
        metavar="URL",
        help="AWS-compatible endpoint to use instead of the embedded emulator "
        "(e.g. http://localhost:4566 for LocalStack)",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def run_up(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    with Progress() as progress:
        result = up(args.workspace, args.endpoint, progress=progress.callback())
    if args.json:
        print(result.to_json(), file=out)
        return 0
    for line in up_summary(result):
        print(line, file=out)
    return 0


def up_summary(result: UpResult) -> list[str]:
    """What ``pipeline up`` prints: where, what, and how to reach it; every line under 80."""
    outputs = result.outputs
    where = (
        f" (embedded emulator, started, pid {result.emulator_pid})"
        if result.started_emulator
        else (" (embedded emulator)" if result.emulator_pid else "")
    )
    created = " (created)" if result.created_workspace else ""
    lines = [
        f"workspace  {result.workspace}{created}",
        f"endpoint   {result.endpoint_url}{where}",
        f"region     {result.region}",
        f"applied in {result.seconds.get('apply', 0):.0f} s",
        "",
    ]
    named = (
        ("stream", outputs.get("stream_name")),
        ("functions", _names(outputs.get("function_names"))),
        ("tables", _names(outputs.get("table_names"))),
        ("buckets", _names(outputs.get("bucket_names"))),
        (
            "lake",
            f"Glue database {outputs.get('glue_database')}, "
            f"Athena workgroup {outputs.get('athena_workgroup')}",
        ),
    )
    for label, value in named:
        if value:
            lines.extend(_wrapped(label, str(value)))
    env = Workspace(
        result.workspace, result.endpoint_url, result.region, outputs, embedded=bool(where)
    ).env()
    lines += ["", "The AWS CLI and SDKs reach it with:"]
    lines += [f"  export {name}={env[name]}" for name in sorted(env)]
    lines += [
        "",
        f"Next: pipeline simulate --workspace {result.workspace} --events 2000",
        f"      pipeline run --workspace {result.workspace} --until-drained",
        f"      pipeline status --workspace {result.workspace}   (every output: --json)",
    ]
    return lines


def _names(value: Any) -> str:
    """A map output's names, shortest first: ``projector, archiver, ...``."""
    if not isinstance(value, dict):
        return ""
    return ", ".join(sorted(str(v) for v in value.values()))


def _wrapped(label: str, text: str, width: int = 79) -> list[str]:
    return textwrap.wrap(
        text,
        width,
        initial_indent=f"{label:<10} ",
        subsequent_indent=" " * 11,
        break_on_hyphens=False,
        break_long_words=False,
    ) or [label]


def run_down(args: argparse.Namespace) -> int:
    with Progress() as progress:
        result = down(args.workspace, args.endpoint, progress=progress.callback())
    if args.json:
        print(result.to_json())
        return 0
    if result.destroyed:
        print(f"destroyed workspace {result.workspace} at {result.endpoint_url}")
    else:
        print(f"workspace {result.workspace}: nothing to destroy")
    if result.stopped_emulator:
        print("stopped the embedded emulator")
    return 0
