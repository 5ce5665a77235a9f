"""The session's deployment and the demo, started in the background as soon as tests are collected.

Applying the root module and running ``pipeline demo`` are mostly waiting (Terraform polls
the emulator until each resource settles), so both start, one after the other, when the
session knows it needs them, and the fast tier runs meanwhile. Each is the command a user
runs, in a process of its own with the environment the session started with:

* ``pipeline up --workspace <session workspace> --json`` in a state directory of the
  session's own (the ``deployed`` fixture waits for it and reads its outputs);
* then, if the end-to-end test is collected, ``pipeline demo`` beside it on the same
  emulator (the test waits for it and checks its report and what it left behind).

With an ``endpoint_url`` (``PIPELINE_TARGET=localstack``, tests/targets.py) ``pipeline up``
gets ``--endpoint`` and starts nothing; since that endpoint outlives the session, the
workspace is destroyed with ``pipeline down --endpoint`` when the session stops.

Terraform is still applied once per session for the session's workspace; the demo's own
workspace is the demo's, as a user's would be.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

from pipelines_local.emulator import stop_emulator
from pipelines_local.infra.stack import UpResult
from pipelines_local.workspace import Workspace

UP_TIMEOUT_SECONDS = 600
DEMO_TIMEOUT_SECONDS = 900
DOWN_TIMEOUT_SECONDS = 600
DEMO_ARGS = ("demo", "--events", "2000", "--seed", "1", "--json")


@dataclass
class Finished:
    """A background command's exit code and output."""

    returncode: int
    stdout: str
    stderr: str


@dataclass
class SessionStack:
    """``pipeline up`` for the session's workspace, then optionally ``pipeline demo``."""

    workspace: str
    state_dir: Path = field(
        default_factory=lambda: Path(tempfile.mkdtemp(prefix="pipelines-session-"))
    )
    with_demo: bool = False
    endpoint_url: str | None = None  # None: the embedded emulator `pipeline up` starts
    _up: Finished | None = None
    _demo: Finished | None = None
    _running: subprocess.Popen[str] | None = None
    _stopping: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _up_done: threading.Event = field(default_factory=threading.Event)
    _demo_done: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        env = {**os.environ, "PIPELINE_STATE_DIR": str(self.state_dir)}
        self._thread = threading.Thread(target=self._run, args=(env,), daemon=True)
        self._thread.start()

    def _command(self, args: tuple[str, ...], env: dict[str, str], timeout: float) -> Finished:
        with self._lock:
            if self._stopping:
                return Finished(-1, "", "the session stopped before this ran")
            process = subprocess.Popen(
                [sys.executable, "-m", "pipelines_local.cli", *args],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            self._running = process
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            stdout, stderr = process.communicate()
            stderr += f"\n(killed after {timeout:.0f}s)"
        return Finished(process.returncode, stdout, stderr)

    def _run(self, env: dict[str, str]) -> None:
        try:
            up_args = ("up", "--workspace", self.workspace, *self._endpoint_args(), "--json")
            self._up = self._command(up_args, env, UP_TIMEOUT_SECONDS)
        finally:
            self._up_done.set()
        try:
            if self.with_demo and self._up.returncode == 0:
                self._demo = self._command(DEMO_ARGS, env, DEMO_TIMEOUT_SECONDS)
        finally:
            self._demo_done.set()

    def _endpoint_args(self) -> tuple[str, ...]:
        return ("--endpoint", self.endpoint_url) if self.endpoint_url else ()

    def up(self) -> UpResult:
        """The session's ``pipeline up`` result, once it has finished."""
        if not self._up_done.wait(UP_TIMEOUT_SECONDS + 60) or self._up is None:
            raise RuntimeError("pipeline up for the session did not finish")
        if self._up.returncode != 0:
            raise RuntimeError(
                f"pipeline up for the session failed ({self._up.returncode}):\n"
                f"{self._up.stderr[-4000:]}"
            )
        return UpResult(**json.loads(self._up.stdout))

    def workspace_record(self) -> Workspace:
        return Workspace.load(self.workspace, self.state_dir)

    def demo(self) -> Finished:
        """The demo's exit code and output, once it has finished."""
        if not self.with_demo:
            raise RuntimeError("the demo was not started for this session")
        if not self._demo_done.wait(UP_TIMEOUT_SECONDS + DEMO_TIMEOUT_SECONDS + 60):
            raise RuntimeError("pipeline demo did not finish")
        if self._demo is None:
            raise RuntimeError("pipeline demo did not run: pipeline up for the session failed")
        return self._demo

    def stop(self) -> Finished | None:
        """Stop whatever still runs, then the emulator ``pipeline up`` started; on an endpoint,
        destroy the workspace instead and return how ``pipeline down`` ended."""
        down: Finished | None = None
        with self._lock:
            self._stopping = True
            if self._running is not None and self._running.poll() is None:
                self._running.kill()
        if self._thread is not None:
            self._thread.join(timeout=60)
        if self.endpoint_url is not None:
            if self._up is not None:  # even a failed up may have created some of it
                down = self._down()
        elif self._up is not None and self._up.returncode == 0:
            pid = UpResult(**json.loads(self._up.stdout)).emulator_pid
            if pid is not None:
                stop_emulator(pid)
        else:  # an up that failed or was killed may still have started one
            record = self.state_dir / "emulator.json"
            if record.is_file():
                stop_emulator(int(json.loads(record.read_text())["pid"]))
        shutil.rmtree(self.state_dir, ignore_errors=True)
        return down

    def _down(self) -> Finished:
        """``pipeline down`` of the workspace on the endpoint (its state is in ``state_dir``)."""
        env = {**os.environ, "PIPELINE_STATE_DIR": str(self.state_dir)}
        args = ("down", "--workspace", self.workspace, *self._endpoint_args(), "--json")
        try:
            done = subprocess.run(
                [sys.executable, "-m", "pipelines_local.cli", *args],
                env=env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=DOWN_TIMEOUT_SECONDS,
            )
        except subprocess.TimeoutExpired:
            return Finished(-1, "", f"pipeline down killed after {DOWN_TIMEOUT_SECONDS}s")
        return Finished(done.returncode, done.stdout, done.stderr)
