"""The runtime of one workspace: its endpoint, its functions' prefix, its checkpoint file."""

from __future__ import annotations

import json
import os
from pathlib import Path

from pipelines.runtime.errors import RuntimeConfigError
from pipelines.runtime.options import RuntimeOptions
from pipelines.runtime.runner import LocalRuntime

PROJECT = "pipelines"


def function_prefix(workspace: str, project: str = PROJECT) -> str:
    """Functions are named ``${project}-${terraform.workspace}-<name>``."""
    return f"{project}-{workspace}-"


def checkpoint_path(state_dir: Path, workspace: str) -> Path:
    """``<state dir>/runtime/<workspace>/checkpoints.json``."""
    return state_dir / "runtime" / workspace / "checkpoints.json"


def resolve_endpoint(state_dir: Path, endpoint_url: str | None = None) -> str:
    """The endpoint given, else the emulator ``pipeline up`` recorded, else ``AWS_ENDPOINT_URL``."""
    if endpoint_url:
        return endpoint_url
    record = state_dir / "emulator.json"
    if record.is_file():
        try:
            recorded = json.loads(record.read_text()).get("endpoint_url")
        except (OSError, ValueError) as exc:
            raise RuntimeConfigError(f"cannot read {record}: {exc}") from exc
        if recorded:
            return str(recorded)
    from_env = os.environ.get("AWS_ENDPOINT_URL")
    if from_env:
        return from_env
    raise RuntimeConfigError(
        f"no endpoint: no emulator recorded in {record} (run `pipeline up`), "
        "no --endpoint and no AWS_ENDPOINT_URL"
    )


def workspace_runtime(
    workspace: str,
    state_dir: Path,
    endpoint_url: str | None = None,
    options: RuntimeOptions | None = None,
) -> LocalRuntime:
    """A runtime for the mappings of ``workspace``'s functions.

    Checkpoints go to ``<state dir>/runtime/<workspace>/checkpoints.json`` and each
    function's output to ``<state dir>/runtime/<workspace>/logs/<function>.log``.
    """
    return LocalRuntime.connect(
        resolve_endpoint(state_dir, endpoint_url),
        function_prefix=function_prefix(workspace),
        checkpoint_path=checkpoint_path(state_dir, workspace),
        options=options,
        log_dir=state_dir / "runtime" / workspace / "logs",
    )
