"""A thin runner for the Terraform CLI: one working directory, one environment."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipelines.errors import PipelineError

logger = logging.getLogger(__name__)


# (resources done, resources to change or None before the plan is known, what it was doing)
ResourceProgress = Callable[[int, int | None, str], None]


class TerraformError(PipelineError):
    """A Terraform command failed; carries the command and the tail of its output."""

    def __init__(self, command: Sequence[str], returncode: int, output: str) -> None:
        tail = "\n".join(output.strip().splitlines()[-40:])
        super().__init__(f"`{' '.join(command)}` exited with {returncode}:\n{tail}")
        self.command = list(command)
        self.returncode = returncode
        self.output = output


@dataclass
class Terraform:
    """Runs ``terraform`` in ``workdir`` with ``env`` (added to this process's, or alone).

    ``data_dir`` becomes TF_DATA_DIR (so ``.terraform`` stays out of the module), and
    every command after :meth:`use_workspace` runs with TF_WORKSPACE set, so two runs
    on different workspaces never fight over a selected workspace.
    """

    workdir: Path
    env: Mapping[str, str] = field(default_factory=dict)
    data_dir: Path | None = None
    binary: str = field(default_factory=lambda: os.environ.get("TERRAFORM", "terraform"))
    workspace: str | None = None
    inherit_env: bool = True
    timings: dict[str, float] = field(default_factory=dict)

    def _environ(self, with_workspace: bool) -> dict[str, str]:
        environ = dict(os.environ) if self.inherit_env else {}
        environ.update(self.env)
        environ.pop("TF_WORKSPACE", None)
        environ["TF_IN_AUTOMATION"] = "1"
        environ["TF_INPUT"] = "0"
        environ["CHECKPOINT_DISABLE"] = "1"
        if self.data_dir is not None:
            environ["TF_DATA_DIR"] = str(self.data_dir)
        if with_workspace and self.workspace is not None:
            environ["TF_WORKSPACE"] = self.workspace
        return environ

    def run(self, *args: str, with_workspace: bool = True) -> str:
        """Run one command; return its output (stdout and stderr together)."""
        returncode, output = self.run_unchecked(*args, with_workspace=with_workspace)
        if returncode != 0:
            raise TerraformError([self.binary, *args], returncode, output)
        return output

    def run_unchecked(
        self,
        *args: str,
        with_workspace: bool = True,
        on_line: Callable[[str], None] | None = None,
    ) -> tuple[int, str]:
        """Run one command; return its exit code and output, whatever the code.

        ``on_line`` is called with each line of output as Terraform writes it.
        """
        if shutil.which(self.binary) is None:
            raise PipelineError(f"terraform not found (looked for {self.binary!r} on PATH)")
        command = [self.binary, f"-chdir={self.workdir}", *args]
        logger.info("running %s", " ".join(command))
        started = time.monotonic()
        lines: list[str] = []
        with subprocess.Popen(
            command,
            env=self._environ(with_workspace),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        ) as process:
            assert process.stdout is not None
            for line in process.stdout:
                lines.append(line)
                if on_line is not None:
                    on_line(line.rstrip("\n"))
            returncode = process.wait()
        self.timings[args[0]] = self.timings.get(args[0], 0.0) + time.monotonic() - started
        return returncode, "".join(lines)

    def init(self) -> None:
        self.run("init", "-input=false", "-no-color", with_workspace=False)

    def workspaces(self) -> list[str]:
        listing = self.run("workspace", "list", "-no-color", with_workspace=False)
        return [line.strip(" *") for line in listing.splitlines() if line.strip(" *")]

    def use_workspace(self, name: str) -> bool:
        """Create ``name`` if it does not exist; return True if it was created."""
        created = name not in self.workspaces()
        if created:
            self.run("workspace", "new", "-no-color", name, with_workspace=False)
        self.workspace = name
        return created

    def apply(self, *args: str, progress: ResourceProgress | None = None) -> None:
        self._change("apply", args, progress)

    def destroy(self, *args: str, progress: ResourceProgress | None = None) -> None:
        self._change("destroy", args, progress)

    def _change(self, verb: str, args: Sequence[str], progress: ResourceProgress | None) -> None:
        """``apply`` or ``destroy``; with ``progress``, in ``-json`` and reported per resource."""
        command = [verb, "-auto-approve", "-input=false", "-no-color", *args]
        if progress is None:
            self.run(*command)
            return
        command.insert(1, "-json")
        tracker = _ResourceTracker(progress)
        returncode, output = self.run_unchecked(*command, on_line=tracker.feed)
        if returncode != 0:
            raise TerraformError([self.binary, *command], returncode, human_output(output))

    def plan_has_changes(self, *args: str) -> tuple[bool, str]:
        """Plan with ``-detailed-exitcode``: (True, plan text) when anything would change."""
        command = ("plan", "-input=false", "-no-color", "-detailed-exitcode", *args)
        returncode, output = self.run_unchecked(*command)
        if returncode not in (0, 2):
            raise TerraformError([self.binary, *command], returncode, output)
        return returncode == 2, output

    def outputs(self) -> dict[str, Any]:
        """``terraform output -json`` as plain values."""
        raw = json.loads(self.run("output", "-json", "-no-color"))
        return {name: item["value"] for name, item in raw.items()}

    def state_resources(self) -> list[str]:
        """Addresses of the resources in the current workspace's state."""
        returncode, output = self.run_unchecked("state", "list", "-no-color")
        if returncode != 0:
            return []
        return [line for line in output.splitlines() if line.strip()]


# The actions of apply hooks the change summary counts ("replace" is a delete and a create).
_COUNTED_ACTIONS = ("create", "update", "delete")


class _ResourceTracker:
    """Reads ``terraform apply -json`` lines; reports resources done of those planned."""

    def __init__(self, progress: ResourceProgress) -> None:
        self.progress = progress
        self.total: int | None = None
        self.done = 0
        self._seen: set[tuple[str, str]] = set()

    def feed(self, line: str) -> None:
        try:
            message = json.loads(line)
        except ValueError:
            return
        if not isinstance(message, dict):
            return
        kind = message.get("type")
        hook = message.get("hook") or {}
        resource = (hook.get("resource") or {}).get("addr", "")
        if kind == "change_summary" and self.total is None:
            changes = message.get("changes") or {}
            self.total = sum(int(changes.get(k, 0)) for k in ("add", "change", "remove"))
            self.progress(self.done, self.total, "planned")
        elif kind in ("apply_complete", "apply_errored"):
            # Data sources read during the apply report their reads too; only changes are
            # counted, each once, as the change summary counts them.
            action = hook.get("action")
            if action in _COUNTED_ACTIONS and (resource, action) not in self._seen:
                self._seen.add((resource, action))
                self.done += 1
            if self.total is not None:
                self.done = min(self.done, self.total)
            self.progress(self.done, self.total, resource)
        elif kind == "apply_start":
            self.progress(self.done, self.total, resource)


def human_output(output: str) -> str:
    """``-json`` output as the lines a person reads: each message, and errors in full."""
    lines: list[str] = []
    for raw in output.splitlines():
        try:
            message = json.loads(raw)
        except ValueError:
            lines.append(raw)
            continue
        if not isinstance(message, dict):
            lines.append(raw)
            continue
        diagnostic = message.get("diagnostic")
        if message.get("type") == "diagnostic" and isinstance(diagnostic, dict):
            lines.append(
                f"{diagnostic.get('severity', 'error').title()}: {diagnostic.get('summary', '')}"
            )
            if diagnostic.get("address"):
                lines.append(f"  with {diagnostic['address']}")
            lines.extend(f"  {d}" for d in str(diagnostic.get("detail", "")).splitlines())
        elif message.get("@level") in ("error", "warn") or message.get("type") in (
            "apply_errored",
        ):
            lines.append(str(message.get("@message", raw)))
    return "\n".join(lines)
