"""A workspace's names are Terraform's outputs, recorded by `pipeline up`, never re-derived."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines_local.workspace import Workspace, WorkspaceError

# The shape of `terraform output -json` of the root module, with a project that is not
# "pipelines" and names that no rule would derive.
OUTPUTS = {
    "name_prefix": "acme-dev",
    "region": "eu-west-1",
    "stream_name": "acme-dev-events",
    "stream_arn": "arn:aws:kinesis:eu-west-1:123456789012:stream/acme-dev-events",
    "bucket_names": {"lake": "acme-dev-lake-123456789012", "archive": "acme-dev-archive-x"},
    "table_names": {"users": "acme-dev-users"},
    "function_names": {"projector": "acme-dev-projector", "lake-writer": "acme-dev-lake-writer"},
    "glue_database": "acme_dev",
    "athena_workgroup": "acme-dev",
    "topic_arns": {"fraud_alerts": "arn:aws:sns:eu-west-1:123456789012:acme-dev-fraud"},
}


def test_names_are_read_from_the_outputs(tmp_path: Path) -> None:
    workspace = Workspace("dev", "http://127.0.0.1:1", "eu-west-1", OUTPUTS, state_dir=tmp_path)
    assert workspace.stream_name == "acme-dev-events"
    assert workspace.bucket("lake") == "acme-dev-lake-123456789012"
    assert workspace.table("users") == "acme-dev-users"
    assert workspace.function("lake-writer") == "acme-dev-lake-writer"
    assert workspace.function_names == ["acme-dev-lake-writer", "acme-dev-projector"]
    assert (workspace.glue_database, workspace.athena_workgroup) == ("acme_dev", "acme-dev")
    assert workspace.topic("fraud_alerts").endswith(":acme-dev-fraud")
    assert workspace.checkpoint_path == tmp_path / "runtime" / "dev" / "checkpoints.json"


def test_a_recorded_workspace_loads_as_it_was_saved(tmp_path: Path) -> None:
    saved = Workspace("dev", "http://127.0.0.1:1", "eu-west-1", OUTPUTS, state_dir=tmp_path)
    saved.save()
    assert Workspace.load("dev", tmp_path) == saved
    moved = Workspace.load("dev", tmp_path, endpoint_url="http://localhost:4566")
    assert moved.endpoint_url == "http://localhost:4566"
    Workspace.forget("dev", tmp_path)
    with pytest.raises(WorkspaceError, match="pipeline up --workspace dev"):
        Workspace.load("dev", tmp_path)


def test_an_unknown_workspace_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(WorkspaceError, match="'nope' is not deployed"):
        Workspace.load("nope", tmp_path)


def test_a_name_the_outputs_lack_is_a_clear_error(tmp_path: Path) -> None:
    workspace = Workspace("dev", None, "eu-west-1", OUTPUTS, state_dir=tmp_path)
    with pytest.raises(WorkspaceError, match="no 'quarantine'"):
        workspace.bucket("quarantine")
    with pytest.raises(WorkspaceError, match="no output 'dashboard_name'"):
        workspace.output("dashboard_name")


def test_an_embedded_workspace_whose_emulator_is_gone_is_a_clear_error(tmp_path: Path) -> None:
    Workspace(
        "dev", "http://127.0.0.1:1", "eu-west-1", OUTPUTS, state_dir=tmp_path, embedded=True
    ).save()
    with pytest.raises(WorkspaceError, match="no longer running"):
        Workspace.load("dev", tmp_path)
