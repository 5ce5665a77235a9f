"""Progress of long work, on standard error: never silence.

On a terminal it is a rich progress bar per step, erased at the end. Anywhere else (CI,
``| tee``, a log file) it is plain lines: one when a step starts, then one at most every
``every`` seconds while it goes on, each with the time since the start::

    [   0s] deploying: terraform apply
    [  10s] deploying: terraform apply 41/97 (aws_dynamodb_table.users)
    [  62s] deploying: done

Commands take a :class:`Progress` and pass its :meth:`update` down as the plain callback
``(step, done, total)`` the library functions accept, so no library code knows how it
is shown.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, TextIO

# (step, done, total): the callback shape the library functions take.
ProgressCallback = Callable[[str, int, int | None], None]

PLAIN_EVERY = 10.0  # seconds between plain lines of one step


class Progress:
    """Shows ``update(step, done, total, detail)`` calls; a context manager."""

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        enabled: bool = True,
        terminal: bool | None = None,
        every: float = PLAIN_EVERY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.terminal = _isatty(self.stream) if terminal is None else terminal
        self.every = every
        self._clock = clock
        self._started = clock()
        self._bar: Any = None
        self._tasks: dict[str, Any] = {}
        self._step: str | None = None
        self._last_line = 0.0

    def __enter__(self) -> Progress:
        if self.enabled and self.terminal:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )
            from rich.progress import (
                Progress as Bar,
            )

            self._bar = Bar(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=Console(file=self.stream),
                transient=True,
            )
            self._bar.__enter__()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.__exit__(kind, error, trace)
            self._bar = None
        elif self.enabled and self._step is not None and kind is None:
            self._line(f"{self._step}: done")

    def update(self, step: str, done: int = 0, total: int | None = None, detail: str = "") -> None:
        """``step`` has ``done`` of ``total`` (None: unknown) units; ``detail`` says what."""
        if not self.enabled:
            return
        if self._bar is not None:
            description = f"{step} ({detail})" if detail else step
            if step not in self._tasks:
                self._tasks[step] = self._bar.add_task(description, total=total)
            self._bar.update(
                self._tasks[step], completed=done, total=total, description=description
            )
            return
        now = self._clock()
        if step != self._step:
            if self._step is not None:
                self._line(f"{self._step}: done")
            self._step = step
        elif now - self._last_line < self.every:
            return
        count = f"{done:,}/{total:,}" if total else (f"{done:,}" if done else "")
        self._line(step + (f": {count}" if count else "") + (f" ({detail})" if detail else ""))

    def callback(self) -> ProgressCallback:
        """:meth:`update` as the ``(step, done, total)`` callback library functions take."""
        return lambda step, done, total: self.update(step, done, total)

    def _line(self, text: str) -> None:
        self._last_line = self._clock()
        elapsed = self._last_line - self._started
        print(f"[{elapsed:4.0f}s] {text}", file=self.stream, flush=True)


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
