"""`pipeline query --engine athena` finds its region as the AWS CLI does, or says it has none."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from pipelines_local import cli
from pipelines_local.workspace import Workspace

ATHENA_ARGS = ["--engine", "athena", "--database", "lake", "--workgroup", "primary"]


@pytest.fixture
def no_region(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No region anywhere: not in the environment, not in a profile."""
    for variable in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(variable, raising=False)
    (tmp_path / "aws-config").write_text("")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")


def test_without_a_region_the_command_says_which_variables_to_set(no_region, capsys):
    assert cli.main(["query", "SELECT 1", *ATHENA_ARGS]) == 1

    captured = capsys.readouterr()
    assert captured.err.startswith("pipeline query: no AWS region")
    assert "AWS_REGION" in captured.err and "AWS_DEFAULT_REGION" in captured.err
    assert "Traceback" not in captured.err


def test_a_workspace_on_aws_without_a_region_says_the_same(
    no_region, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
):
    monkeypatch.setenv("PIPELINE_STATE_DIR", str(tmp_path))
    outputs = {"athena_workgroup": "primary", "glue_database": "lake"}
    Workspace("qaws", None, "", outputs, state_dir=tmp_path).save()

    assert cli.main(["query", "SELECT 1", "--engine", "athena", "--workspace", "qaws"]) == 1

    assert capsys.readouterr().err.startswith("pipeline query: no AWS region")


def test_aws_region_is_honoured_before_aws_default_region(
    no_region, monkeypatch: pytest.MonkeyPatch, capsys
):
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")

    with mock_aws():
        assert cli.main(["query", "SELECT 1", *ATHENA_ARGS]) == 0
        ran = {
            region: boto3.client("athena", region_name=region).list_query_executions()
            for region in ("eu-west-1", "us-east-1")
        }

    assert capsys.readouterr().err == ""
    assert len(ran["eu-west-1"]["QueryExecutionIds"]) == 1
    assert ran["us-east-1"]["QueryExecutionIds"] == []


def test_aws_default_region_alone_is_enough(no_region, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-central-1")

    with mock_aws():
        assert cli.main(["query", "SELECT 1", *ATHENA_ARGS]) == 0
        athena = boto3.client("athena", region_name="eu-central-1")
        assert len(athena.list_query_executions()["QueryExecutionIds"]) == 1
