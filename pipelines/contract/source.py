"""A tiny emitter of Python source: indented lines, fresh local names, bound constants."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class Source:
    """The body of one generated function, and the constants it binds as defaults.

    Constants (struct methods, the epoch, symbol tables...) become keyword
    defaults of the generated function, so that the code reads them as fast
    locals rather than globals.
    """

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.bound: dict[str, Any] = {}
        self._depth = 1
        self._counter = 0

    def line(self, text: str) -> None:
        self.lines.append("    " * self._depth + text)

    @contextmanager
    def block(self, header: str) -> Iterator[None]:
        self.line(header)
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1

    def fresh(self, stem: str) -> str:
        self._counter += 1
        return f"{stem}{self._counter}"

    def bind(self, stem: str, value: Any) -> str:
        """A local name holding ``value``; the same object gets the same name."""
        for name, bound in self.bound.items():
            if bound is value:
                return name
        name = f"_{stem}{len(self.bound)}"
        self.bound[name] = value
        return name

    def function(self, signature: str, params: str) -> str:
        """The whole ``def``: ``params`` first, then one keyword default per bound constant."""
        defaults = "".join(f", {name}={name}" for name in self.bound)
        return f"def {signature}({params}{defaults}):\n" + "\n".join(self.lines) + "\n"
