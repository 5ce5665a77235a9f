"""The generated Terraform CLI config, the emulator override and workspace settings."""

from __future__ import annotations

from pathlib import Path

from pipelines_local.infra.cli_config import render_cli_config, write_cli_config
from pipelines_local.infra.override import OVERRIDE_FILE, prepare_module, render_override
from pipelines_local.infra.stack import var_file_for

ROOT = Path(__file__).resolve().parents[2]


def test_cli_config_installs_only_from_the_mirror(tmp_path):
    text = render_cli_config(Path("/opt/tf-plugins"), tmp_path / "cache")
    assert 'filesystem_mirror {\n    path    = "/opt/tf-plugins"' in text
    assert "direct" not in text  # no fallback to the network
    assert f'plugin_cache_dir = "{tmp_path / "cache"}"' in text


def test_cli_config_is_rewritten_only_when_it_changes(tmp_path):
    path = write_cli_config(tmp_path / "terraformrc", mirror=tmp_path / "mirror")
    before = path.stat().st_mtime_ns
    write_cli_config(tmp_path / "terraformrc", mirror=tmp_path / "mirror")
    assert path.stat().st_mtime_ns == before
    assert (tmp_path / "plugin-cache").is_dir()


def test_override_keeps_the_account_id_and_uses_a_local_backend(tmp_path):
    text = render_override(tmp_path / "state")
    assert "skip_requesting_account_id  = false" in text
    assert "s3_use_path_style           = true" in text
    assert f'workspace_dir = "{tmp_path / "state" / "workspaces"}"' in text
    assert "endpoint" not in text  # endpoints come from AWS_ENDPOINT_URL
    assert 'variable "emulated" {\n  default = true\n}' in text


def test_override_goes_into_a_copy_never_into_the_source(tmp_path):
    source = tmp_path / "terraform"
    source.mkdir()
    (source / "main.tf").write_text("# main\n")
    (source / "stale_override.tf").write_text("# from elsewhere\n")
    target = prepare_module(source, tmp_path / "work", tmp_path / "state")
    assert (target / OVERRIDE_FILE).is_file()
    assert not (target / "stale_override.tf").exists()
    assert sorted(p.name for p in source.iterdir()) == ["main.tf", "stale_override.tf"]


def test_copy_keeps_the_lock_file_of_an_earlier_init(tmp_path):
    source = tmp_path / "terraform"
    source.mkdir()
    (source / "main.tf").write_text("# main\n")
    target = prepare_module(source, tmp_path / "work", tmp_path / "state")
    (target / ".terraform.lock.hcl").write_text("# lock\n")
    prepare_module(source, tmp_path / "work", tmp_path / "state")
    assert (target / ".terraform.lock.hcl").read_text() == "# lock\n"


def test_a_workspace_without_its_own_settings_uses_the_local_ones():
    terraform = ROOT / "terraform"
    assert var_file_for("prod", terraform).name == "prod.tfvars"
    assert var_file_for("pr-42", terraform).name == "local.tfvars"
