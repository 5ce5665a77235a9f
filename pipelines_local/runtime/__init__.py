"""The local runtime: what Lambda's event source mappings do, played in this process.

It reads the mappings and function configurations Terraform created, polls every Kinesis shard
and SQS queue, builds events shaped as AWS builds them and invokes each function's handler with
a Lambda context and the function's environment. See ``docs/adr/0002-local-runtime.md``.
"""

from pipelines_local.runtime.checkpoints import CheckpointStore
from pipelines_local.runtime.context import LambdaContext
from pipelines_local.runtime.discovery import FunctionConfig, MappingConfig, discover_mappings
from pipelines_local.runtime.errors import (
    CheckpointError,
    DestinationError,
    HandlerImportError,
    RuntimeConfigError,
)
from pipelines_local.runtime.options import RuntimeOptions
from pipelines_local.runtime.runner import LocalRuntime, RunResult
from pipelines_local.runtime.stats import MappingStats

__all__ = [
    "CheckpointError",
    "CheckpointStore",
    "DestinationError",
    "FunctionConfig",
    "HandlerImportError",
    "LambdaContext",
    "LocalRuntime",
    "MappingConfig",
    "MappingStats",
    "RunResult",
    "RuntimeConfigError",
    "RuntimeOptions",
    "discover_mappings",
]
