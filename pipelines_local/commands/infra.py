"""``pipeline up`` / ``pipeline down``: bring a Terraform workspace up or down.

Without ``--endpoint`` the stack goes to the embedded emulator, started in the background
on first use; with one (``http://localhost:4566`` for LocalStack) it goes there.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from pipelines_local.infra.stack import DEFAULT_WORKSPACE, down, up


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


def run_up(args: argparse.Namespace) -> int:
    result = up(args.workspace, args.endpoint)
    if args.json:
        print(result.to_json())
        return 0
    started = f" (started, pid {result.emulator_pid})" if result.started_emulator else ""
    print(f"endpoint   {result.endpoint_url}{started}")
    print(f"region     {result.region}")
    print(f"workspace  {result.workspace}")
    print(f"applied in {result.seconds.get('apply', 0):.0f}s")
    print()
    for name, value in sorted(result.outputs.items()):
        print(f"{name:<18} {_show(value)}")
    return 0


def run_down(args: argparse.Namespace) -> int:
    result = down(args.workspace, args.endpoint)
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


def _show(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)
