"""``pipeline package``: build the Lambda deployment package."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from pipelines_local.packaging import build_package


def register(subparsers: Any) -> None:
    package = subparsers.add_parser(
        "package", help="build the Lambda deployment package (deterministic zip)"
    )
    package.add_argument("--out", type=Path, help="zip path (default build/lambda/pipelines.zip)")
    package.add_argument("--json", action="store_true", help="print the result as JSON")
    package.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    built = build_package(args.out)
    if args.json:
        print(
            json.dumps(
                {
                    "path": str(built.path),
                    "sha256": built.sha256,
                    "bytes": built.size,
                    "files": built.files,
                }
            )
        )
    else:
        print(f"{built.path}  {built.size:,} bytes  {built.files} files  sha256 {built.sha256}")
    return 0
