"""The emulator's own process: moto's server with our patches applied."""

from __future__ import annotations

import logging
import os
import signal
import tempfile
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from types import FrameType

from pipelines_local.emulator.patches import apply_patches

logger = logging.getLogger(__name__)


def serve(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    ready_file: Path | None = None,
    disabled_patches: Iterable[str] = (),
    log_requests: bool = False,
    exit_with_parent: bool = False,
) -> None:
    """Apply the patches, then serve moto on ``host:port`` until SIGTERM or SIGINT.

    ``port`` 0 binds a free port. Once the socket listens, the bound port is written to
    ``ready_file`` (atomically), which is how
    :func:`~pipelines_local.emulator.start_emulator` learns it.
    With ``exit_with_parent`` the server stops when the process that started it goes away, so a
    crashed test run leaves no server behind.
    """
    apply_patches(disabled_patches)

    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    if not log_requests:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)

    app = DomainDispatcherApplication(create_backend_app)
    server = make_server(host, port, app, threaded=True, request_handler=MotoRequestHandler)
    bound_port = server.server_port
    # moto builds some URLs (SQS queue URLs in Lambda environments) from MOTO_PORT.
    os.environ["MOTO_PORT"] = str(bound_port)

    def _stop(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)

    if exit_with_parent:
        _watch_parent(os.getppid())
    if ready_file is not None:
        _write_atomically(ready_file, f"{bound_port}\n")
    logger.info("emulator serving on http://%s:%d (pid %d)", host, bound_port, os.getpid())
    try:
        server.serve_forever()
    finally:
        server.server_close()
        logger.info("emulator stopped")


def _write_atomically(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(tmp, path)


def _watch_parent(parent_pid: int, interval: float = 1.0) -> None:
    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(interval)
        logger.info("parent process %d has gone; stopping", parent_pid)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
