"""Starting, using, resetting and stopping the embedded emulator."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import boto3
import pytest

from pipelines_local.emulator import (
    EmulatorError,
    EmulatorProcess,
    start_emulator,
    stop_emulator,
)

pytestmark = pytest.mark.integration


def _answers(endpoint_url: str) -> bool:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(f"{endpoint_url}/moto-api/", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def test_started_emulator_answers_on_a_free_loopback_port_until_stopped() -> None:
    emulator = start_emulator()
    try:
        assert emulator.endpoint_url.startswith("http://127.0.0.1:")
        assert emulator.port > 0
        assert emulator.is_running()
        assert _answers(emulator.endpoint_url)
    finally:
        emulator.stop()

    assert not emulator.is_running()
    assert not _answers(emulator.endpoint_url)


def test_context_manager_stops_the_emulator(tmp_path: Path) -> None:
    log = tmp_path / "emulator.log"

    with start_emulator(log_path=log) as emulator:
        assert _answers(emulator.endpoint_url)

    assert not emulator.is_running()
    assert "emulator serving on" in log.read_text()


def test_aws_env_points_boto3_at_the_emulator(aws_env: dict[str, str]) -> None:
    kinesis = boto3.client("kinesis")

    name = f"env-check-{uuid.uuid4().hex[:8]}"

    kinesis.create_stream(StreamName=name, ShardCount=1)

    assert kinesis.meta.endpoint_url == aws_env["AWS_ENDPOINT_URL"]
    assert name in kinesis.list_streams(Limit=1000)["StreamNames"]


def test_reset_forgets_every_resource() -> None:
    # A private emulator: resetting the session's one would wipe other tests' resources.
    with start_emulator() as emulator:
        env = emulator.env()
        sqs = boto3.client(
            "sqs",
            endpoint_url=emulator.endpoint_url,
            region_name=env["AWS_DEFAULT_REGION"],
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        )
        sqs.create_queue(QueueName="before-reset")

        emulator.reset()

        assert sqs.list_queues().get("QueueUrls", []) == []


def test_an_emulator_that_cannot_bind_reports_why(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        with pytest.raises(EmulatorError, match="Address already in use"):
            start_emulator(port=port, log_path=tmp_path / "emulator.log", timeout=20)


def test_detached_emulator_outlives_its_parent_and_stops_by_pid(tmp_path: Path) -> None:
    log = tmp_path / "emulator.log"
    script = (
        "import json; from pipelines_local.emulator import start_emulator; "
        f"emu = start_emulator(detached=True, log_path={str(log)!r}); "
        "print(json.dumps({'pid': emu.pid, 'url': emu.endpoint_url}))"
    )
    parent = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    started = json.loads(parent.stdout)
    try:
        assert _answers(started["url"])
    finally:
        stopped = stop_emulator(started["pid"])

    assert stopped
    assert not _answers(started["url"])
    assert stop_emulator(started["pid"]) is False


def test_stop_emulator_refuses_a_process_that_is_not_an_emulator() -> None:
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with pytest.raises(EmulatorError, match="not an emulator"):
            stop_emulator(other.pid)
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()


def test_emulator_stops_when_its_parent_dies() -> None:
    script = (
        "import json, os; from pipelines_local.emulator import start_emulator; "
        "emu = start_emulator(); "
        "print(json.dumps({'pid': emu.pid, 'url': emu.endpoint_url}), flush=True); "
        "os._exit(0)"
    )
    parent = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    started = json.loads(parent.stdout)
    orphan = EmulatorProcess(endpoint_url=started["url"], pid=started["pid"])
    try:
        deadline = time.monotonic() + 10
        while orphan.is_running() and time.monotonic() < deadline:
            time.sleep(0.1)

        assert not orphan.is_running()
    finally:
        stop_emulator(orphan.pid)
