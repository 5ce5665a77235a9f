"""The environment that points AWS clients at the emulator."""

from __future__ import annotations

from pipelines_local.emulator import EmulatorProcess, emulator_env


def test_emulator_env_points_every_client_at_the_endpoint_with_test_credentials() -> None:
    env = emulator_env("http://127.0.0.1:4566")

    assert env == {
        "AWS_ENDPOINT_URL": "http://127.0.0.1:4566",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
    }


def test_emulator_process_knows_its_port_and_environment() -> None:
    emulator = EmulatorProcess(endpoint_url="http://127.0.0.1:50123", pid=1)

    assert emulator.port == 50123
    assert emulator.env()["AWS_ENDPOINT_URL"] == "http://127.0.0.1:50123"
