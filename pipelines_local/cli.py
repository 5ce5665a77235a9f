"""The ``pipeline`` command: one entry point for people."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from pipelines.errors import PipelineError

# Each module exposes ``register(subparsers)``; a subcommand sets ``func``.
_COMMAND_MODULES = (
    "pipelines_local.commands.events",
    "pipelines_local.commands.schemas",
    "pipelines_local.commands.infra",
    "pipelines_local.commands.simulate",
    "pipelines_local.commands.run",
    "pipelines_local.commands.deadletters",
    "pipelines_local.commands.query",
    "pipelines_local.commands.lake",
    "pipelines_local.commands.replay",
    "pipelines_local.commands.quarantine",
    "pipelines_local.commands.package",
    "pipelines_local.commands.demo",
    "pipelines_local.commands.status",
    "pipelines_local.commands.logs",
    "pipelines_local.commands.alerts",
)


class UsageError(PipelineError):
    """The command line or its input is wrong; exit 2 with the message."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pipeline",
        description="Event-sourced streaming pipeline: events, infrastructure, demo.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.register(subparsers)
    return parser


# What the `local` extra installs; without it the commands cannot import.
_LOCAL_EXTRA = frozenset({"rich", "duckdb", "sqlglot", "pytz", "moto"})


def main(argv: Sequence[str] | None = None) -> int:
    try:
        parser = build_parser()
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in _LOCAL_EXTRA:
            raise
        print(
            f"pipeline: {exc.name} is missing; the command line needs the local extra: "
            "pip install 'pipelines[local]'",
            file=sys.stderr,
        )
        return 2
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        code: int = args.func(args)
    except KeyboardInterrupt:
        print("pipeline: interrupted", file=sys.stderr)
        return 130
    except PipelineError as exc:
        print(f"pipeline {args.command}: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, UsageError) else 1
    return code


if __name__ == "__main__":
    # Run as `python -m pipelines_local.cli`, this file is `__main__`; the commands import
    # `pipelines_local.cli` (for UsageError), so run that module's main, not this copy's.
    from pipelines_local.cli import main as _main

    sys.exit(_main())
