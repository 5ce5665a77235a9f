"""Errors of the local runtime."""

from __future__ import annotations

from pipelines.errors import PipelineError


class RuntimeConfigError(PipelineError):
    """A mapping or function configuration the runtime cannot act on."""


class HandlerImportError(PipelineError):
    """The handler named in a function configuration cannot be imported or is not callable.

    Lambda reports this as ``Runtime.ImportModuleError`` / ``Runtime.HandlerNotFound`` on each
    invocation; the runtime treats it the same way, as a function error.
    """


class CheckpointError(PipelineError):
    """The checkpoint file cannot be read or written."""


class DestinationError(PipelineError):
    """The on-failure destination refused the coordinates of records given up on.

    The shard's checkpoint does not move past those records, so a restarted runtime tries again.
    """
