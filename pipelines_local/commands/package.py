"""``pipeline package``: build the Lambda deployment package and the lake layer."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from pipelines_local.packaging import (
    UNZIPPED_BUDGET,
    UNZIPPED_LIMIT,
    Package,
    build_packages,
    mib,
)


def register(subparsers: Any) -> None:
    package = subparsers.add_parser(
        "package",
        help="build the Lambda deployment package and the lake layer (deterministic zips)",
        description="Builds the functions' package (the pipelines code and its dependencies "
        "for Lambda's Python 3.11 on x86_64) and the lake writer's layer (pyarrow, pyiceberg), "
        "each a zip with fixed timestamps and file order, so the same sources give the same "
        "bytes; checks each against Lambda's unzipped size limit.",
    )
    package.add_argument("--out", type=Path, help="zip path (default build/lambda/pipelines.zip)")
    package.add_argument(
        "--lake-layer-out",
        type=Path,
        help="lake layer zip path (default build/lambda/lake-layer.zip)",
    )
    package.add_argument("--json", action="store_true", help="print the result as JSON")
    package.set_defaults(func=run)


def _described(built: Package) -> dict[str, Any]:
    return {
        "path": str(built.path),
        "sha256": built.sha256,
        "bytes": built.size,
        "unzipped_bytes": built.unzipped,
        "files": built.files,
    }


def run(args: argparse.Namespace) -> int:
    built = build_packages(args.out, args.lake_layer_out)
    allowed = int(UNZIPPED_LIMIT * UNZIPPED_BUDGET)
    if args.json:
        print(
            json.dumps(
                {
                    "package": _described(built.package),
                    "lake_layer": _described(built.lake_layer),
                    "lake_writer_unzipped_bytes": built.lake_writer_unzipped,
                    "unzipped_limit_bytes": UNZIPPED_LIMIT,
                    "unzipped_allowed_bytes": allowed,
                }
            )
        )
        return 0
    for item in (built.package, built.lake_layer):
        print(
            f"{item.path}  {mib(item.size)} zipped  {mib(item.unzipped)} unzipped  "
            f"{item.files} files  sha256 {item.sha256}"
        )
    print(
        f"lake writer (package + lake layer): {mib(built.lake_writer_unzipped)} unzipped, "
        f"of {mib(allowed)} allowed ({UNZIPPED_BUDGET:.0%} of Lambda's {mib(UNZIPPED_LIMIT)})"
    )
    return 0
