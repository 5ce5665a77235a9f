"""Every command and subcommand says what it does in its own --help."""

from __future__ import annotations

import argparse

from pipelines_local.cli import build_parser


def _commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.append(((*path, name), sub))
                found.extend(_commands(sub, (*path, name)))
    return found


def test_every_command_has_a_description() -> None:
    commands = _commands(build_parser())

    assert {("up",), ("down",), ("schemas",), ("schemas", "release")} <= {p for p, _ in commands}
    assert [" ".join(p) for p, sub in commands if not (sub.description or "").strip()] == []
