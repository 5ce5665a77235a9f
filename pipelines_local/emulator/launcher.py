"""Start, find and stop the embedded emulator: moto's server, patched, in its own process."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import pipelines
from pipelines.errors import PipelineError

logger = logging.getLogger(__name__)

REGION = "us-east-1"
CREDENTIAL = "test"

_POLL_INTERVAL = 0.05
_SERVE_MODULE = "pipelines_local.emulator"
_no_proxy = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class EmulatorError(PipelineError):
    """The emulator did not start, did not answer, or could not be stopped."""


def emulator_env(endpoint_url: str) -> dict[str, str]:
    """Return the environment pointing the AWS SDKs, the AWS CLI and Terraform at the emulator."""
    return {
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_ACCESS_KEY_ID": CREDENTIAL,
        "AWS_SECRET_ACCESS_KEY": CREDENTIAL,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }


@dataclass
class EmulatorProcess:
    """A running emulator: where it answers, and the process that serves it.

    Usable as a context manager, which stops the emulator on exit.
    """

    endpoint_url: str
    pid: int
    log_path: Path | None = None
    detached: bool = False
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False, compare=False)
    _scratch: Path | None = field(default=None, repr=False, compare=False)

    @property
    def port(self) -> int:
        """The TCP port the emulator listens on."""
        return int(self.endpoint_url.rsplit(":", 1)[1])

    def env(self) -> dict[str, str]:
        """The environment that points AWS clients at this emulator (see :func:`emulator_env`)."""
        return emulator_env(self.endpoint_url)

    def is_running(self) -> bool:
        """Whether the emulator's process is still alive."""
        if self._process is not None:
            return self._process.poll() is None
        return _is_alive(self.pid)

    def reset(self) -> None:
        """Forget every resource and record (moto's ``/moto-api/reset``)."""
        reset_emulator(self.endpoint_url)

    def stop(self, timeout: float = 10.0) -> None:
        """Terminate the emulator and wait until its process has gone."""
        if self._process is not None:
            _terminate_child(self._process, timeout)
        else:
            stop_emulator(self.pid, timeout=timeout)
        if self._scratch is not None and not self.detached:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None

    def __enter__(self) -> EmulatorProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def start_emulator(
    host: str = "127.0.0.1",
    port: int = 0,
    detached: bool = False,
    log_path: str | os.PathLike[str] | None = None,
    *,
    timeout: float = 30.0,
    disabled_patches: Iterable[str] = (),
) -> EmulatorProcess:
    """Start the emulator in a new process and return once it answers HTTP.

    ``port`` 0 lets the emulator bind a free port. With ``detached`` the emulator runs in a new
    session and outlives this process (stop it later with :func:`stop_emulator` and its pid);
    otherwise it also stops if this process dies. Its output goes to ``log_path`` (by default a
    file in a fresh temporary directory, removed by :meth:`EmulatorProcess.stop` unless detached).
    ``disabled_patches`` leaves named patches out, for comparing with moto as released.

    Raises :class:`EmulatorError` if the process exits early or does not answer within ``timeout``.
    """
    scratch = Path(tempfile.mkdtemp(prefix="pipelines-emulator-"))
    ready_file = scratch / "port"
    log = Path(log_path) if log_path is not None else scratch / "emulator.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        _SERVE_MODULE,
        "serve",
        "--host",
        host,
        "--port",
        str(port),
        "--ready-file",
        str(ready_file),
    ]
    for name in disabled_patches:
        command += ["--disable-patch", name]
    if not detached:
        command.append("--exit-with-parent")

    with open(log, "ab") as log_handle:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log_handle,
            stderr=subprocess.STDOUT,
            start_new_session=detached,
            env=_child_env(),
        )
    deadline = time.monotonic() + timeout
    try:
        bound_port = _wait_for_port(process, ready_file, log, deadline)
        endpoint_url = f"http://{_client_host(host)}:{bound_port}"
        _wait_for_http(process, endpoint_url, log, deadline)
    except BaseException:
        _terminate_child(process, timeout=5.0)
        raise
    finally:
        ready_file.unlink(missing_ok=True)
    if log_path is not None:
        shutil.rmtree(scratch, ignore_errors=True)
    logger.info("emulator started at %s (pid %d, log %s)", endpoint_url, process.pid, log)
    return EmulatorProcess(
        endpoint_url=endpoint_url,
        pid=process.pid,
        log_path=log,
        detached=detached,
        _process=process,
        _scratch=None if log_path is not None else scratch,
    )


def stop_emulator(pid: int, timeout: float = 10.0) -> bool:
    """Stop the emulator running as ``pid`` (SIGTERM, then SIGKILL after ``timeout``).

    Returns False if no such process was running. Raises :class:`EmulatorError` if ``pid`` is a
    different program (a reused pid) or does not go away.
    """
    if not _is_alive(pid):
        return False
    _check_is_emulator(pid)
    try:
        os.kill(pid, signal.SIGTERM)
        if not _wait_for_exit(pid, timeout):
            logger.warning("emulator pid %d ignored SIGTERM for %.0fs; killing it", pid, timeout)
            os.kill(pid, signal.SIGKILL)
            if not _wait_for_exit(pid, 5.0):
                raise EmulatorError(f"emulator pid {pid} did not exit")
    except ProcessLookupError:
        pass
    logger.info("emulator pid %d stopped", pid)
    return True


def reset_emulator(endpoint_url: str, timeout: float = 30.0) -> None:
    """Forget every resource and record the emulator holds (``POST /moto-api/reset``)."""
    request = urllib.request.Request(f"{endpoint_url}/moto-api/reset", data=b"", method="POST")
    try:
        with _no_proxy.open(request, timeout=timeout) as response:
            response.read()
    except (urllib.error.URLError, OSError) as exc:
        raise EmulatorError(f"could not reset the emulator at {endpoint_url}: {exc}") from exc


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    # The child imports this package even when it is not installed (a plain checkout).
    root = str(Path(pipelines.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env


def _client_host(host: str) -> str:
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def _wait_for_port(
    process: subprocess.Popen[bytes], ready_file: Path, log: Path, deadline: float
) -> int:
    while True:
        if ready_file.exists():
            return int(ready_file.read_text().strip())
        _raise_if_exited(process, log)
        if time.monotonic() > deadline:
            raise EmulatorError(f"emulator did not bind a port in time; see {log}\n{_tail(log)}")
        time.sleep(_POLL_INTERVAL)


def _wait_for_http(
    process: subprocess.Popen[bytes], endpoint_url: str, log: Path, deadline: float
) -> None:
    while True:
        try:
            with _no_proxy.open(f"{endpoint_url}/moto-api/", timeout=2.0) as response:
                response.read()
                return
        except (urllib.error.URLError, OSError) as exc:
            _raise_if_exited(process, log)
            if time.monotonic() > deadline:
                raise EmulatorError(
                    f"emulator at {endpoint_url} did not answer in time ({exc}); see {log}"
                ) from exc
            time.sleep(_POLL_INTERVAL)


def _raise_if_exited(process: subprocess.Popen[bytes], log: Path) -> None:
    code = process.poll()
    if code is not None:
        raise EmulatorError(
            f"emulator exited with code {code} before it was ready; see {log}\n{_tail(log)}"
        )


def _tail(log: Path, lines: int = 20) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _terminate_child(process: subprocess.Popen[bytes], timeout: float) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        logger.warning("emulator pid %d ignored SIGTERM; killing it", process.pid)
        process.kill()
        process.wait(5.0)


def _is_alive(pid: int) -> bool:
    try:
        reaped, _ = os.waitpid(pid, os.WNOHANG)
        if reaped == pid:
            return False
    except ChildProcessError:
        pass  # not our child: ask the kernel instead
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"


def _check_is_emulator(pid: int) -> None:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return  # no /proc here: trust the caller
    if _SERVE_MODULE not in cmdline:
        raise EmulatorError(f"pid {pid} is not an emulator: {cmdline.strip()!r}")


def _wait_for_exit(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _is_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(_POLL_INTERVAL)
    return True
