"""Errors of lake queries."""

from __future__ import annotations

from pipelines.errors import PipelineError


class QueryError(PipelineError):
    """A query could not be run: bad SQL, an unknown table, or the engine failed it."""
