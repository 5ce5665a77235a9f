"""``python -m pipelines_local.emulator serve --host H --port P``: run the embedded emulator."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from pipelines_local.emulator.patches import patch_names
from pipelines_local.emulator.server import serve


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m pipelines_local.emulator", description="The embedded AWS emulator."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser("serve", help="serve moto with the AWS-behaviour patches")
    serve_parser.add_argument("--host", default="127.0.0.1")
    serve_parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    serve_parser.add_argument(
        "--ready-file", type=Path, help="write the bound port here once listening"
    )
    serve_parser.add_argument(
        "--disable-patch",
        action="append",
        default=[],
        choices=patch_names(),
        metavar="NAME",
        help=f"leave one patch out (repeatable); one of: {', '.join(patch_names())}",
    )
    serve_parser.add_argument(
        "--exit-with-parent", action="store_true", help="stop when the starting process dies"
    )
    serve_parser.add_argument("--log-requests", action="store_true", help="log every request")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    serve(
        args.host,
        args.port,
        ready_file=args.ready_file,
        disabled_patches=args.disable_patch,
        log_requests=args.log_requests,
        exit_with_parent=args.exit_with_parent,
    )


if __name__ == "__main__":
    main()
