"""Function output: per-function log files, and the EMF metrics in them.

On AWS a function's standard output goes to its CloudWatch log group, and
CloudWatch extracts metrics from the lines in Embedded Metric Format. The local
runtime does the same: while it runs, ``sys.stdout`` is a :class:`FunctionOutput`
that sends a function's output to ``<log dir>/<function name>.log`` (or nowhere
when no directory is set) and feeds EMF lines to :class:`EmfMetrics`. Output
written outside an invocation goes to the real standard output.
"""

from __future__ import annotations

import io
import json
import sys
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

from pipelines.consumers.metrics import EVENT_TYPE

# (namespace, metric name, ((dimension, value), ...)) -> summed value
MetricKey = tuple[str, str, tuple[tuple[str, str], ...]]


class EmfMetrics:
    """Sums of the metrics found in EMF log lines."""

    def __init__(self) -> None:
        self.values: defaultdict[MetricKey, float] = defaultdict(float)

    def feed(self, line: str) -> None:
        if '"_aws"' not in line:
            return
        try:
            blob = json.loads(line)
            directives = blob["_aws"]["CloudWatchMetrics"]
        except (ValueError, KeyError, TypeError):
            return
        for directive in directives:
            namespace = directive.get("Namespace", "")
            for dimension_set in directive.get("Dimensions", []) or [[]]:
                dims = tuple(sorted((d, str(blob.get(d, ""))) for d in dimension_set))
                for metric in directive.get("Metrics", []):
                    value = blob.get(metric["Name"])
                    values = value if isinstance(value, list) else [value]
                    total = sum(v for v in values if isinstance(v, int | float))
                    self.values[(namespace, metric["Name"], dims)] += total

    def total(self, name: str, *, service: str | None = None) -> float:
        """A metric summed over its totals: the dimension sets that break nothing down.

        With ``service``, only the metric of that service (Powertools' ``service``
        dimension, the function's ``POWERTOOLS_SERVICE_NAME``).
        """
        return sum(
            v for (_, n, dims), v in self.values.items()
            if n == name and {d for d, _ in dims} <= {"service"} and _of(dims, service)
        )  # fmt: skip

    def by_dimension(
        self, name: str, dimension: str, *, service: str | None = None
    ) -> dict[str, float]:
        """A metric broken down by one dimension's values (of one service, if given)."""
        out: defaultdict[str, float] = defaultdict(float)
        for (_, n, dims), v in self.values.items():
            if n == name and _of(dims, service):
                for d, value in dims:
                    if d == dimension:
                        out[value] += v
        return dict(out)


def _of(dims: tuple[tuple[str, str], ...], service: str | None) -> bool:
    return service is None or ("service", service) in dims


class _FunctionSink(io.TextIOBase):
    """Where one function's output goes: its log file and the EMF extractor."""

    def __init__(self, log: TextIO | None, metrics: EmfMetrics) -> None:
        self._log = log
        self._metrics = metrics
        self._partial = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if self._log is not None:
            self._log.write(text)
        lines = (self._partial + text).split("\n")
        self._partial = lines.pop()
        for line in lines:
            self._metrics.feed(line)
        return len(text)


class FunctionOutput(io.TextIOBase):
    """Stands in for ``sys.stdout`` while the runtime runs."""

    def __init__(self, log_dir: Path | None, metrics: EmfMetrics | None = None) -> None:
        self.log_dir = log_dir
        self.metrics = metrics or EmfMetrics()
        self._real: TextIO = sys.stdout
        self._current: _FunctionSink | None = None
        self._files: dict[str, TextIO] = {}

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if self._current is not None:
            return self._current.write(text)
        return self._real.write(text)

    def flush(self) -> None:
        for handle in self._files.values():
            handle.flush()
        self._real.flush()

    @contextmanager
    def installed(self) -> Iterator[FunctionOutput]:
        """Replace ``sys.stdout`` with this object for the duration."""
        self._real = sys.stdout
        sys.stdout = self
        try:
            yield self
        finally:
            sys.stdout = self._real
            for handle in self._files.values():
                handle.close()
            self._files.clear()

    @contextmanager
    def function(self, name: str) -> Iterator[None]:
        """Route output to ``name``'s log for the duration of one invocation."""
        previous = self._current
        self._current = _FunctionSink(self._log_for(name), self.metrics)
        try:
            yield
        finally:
            self._current = previous

    def _log_for(self, name: str) -> TextIO | None:
        if self.log_dir is None:
            return None
        if name not in self._files:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            self._files[name] = (self.log_dir / f"{name}.log").open("a", encoding="utf-8")
        return self._files[name]


def metric_summary(metrics: EmfMetrics, names: list[str]) -> dict[str, Any]:
    """Totals and by-event-type breakdowns of ``names``, for reports."""
    return {
        name: {
            "total": metrics.total(name),
            "by_event_type": metrics.by_dimension(name, EVENT_TYPE),
        }
        for name in names
    }
