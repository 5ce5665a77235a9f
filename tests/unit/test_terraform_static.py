"""Static checks of terraform/: formatting, validation, checkov, module conventions.

Validation runs ``terraform init -backend=false`` from the provider mirror, with the network
cut where the machine allows it (``unshare --net``), in a copy of the module so no lock file
or ``.terraform`` lands in the repository.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from pipelines_local.infra.cli_config import provider_mirror, write_cli_config
from pipelines_local.infra.terraform import Terraform

ROOT = Path(__file__).resolve().parents[2]
TERRAFORM_DIR = ROOT / "terraform"
MODULES = sorted(p for p in (TERRAFORM_DIR / "modules").iterdir() if p.is_dir())
CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"

needs_terraform = pytest.mark.skipif(
    shutil.which("terraform") is None or not provider_mirror().is_dir(),
    reason="terraform or its provider mirror is not installed",
)


@needs_terraform
def test_terraform_is_formatted():
    result = subprocess.run(
        ["terraform", "fmt", "-check", "-recursive", "-diff", str(TERRAFORM_DIR)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, f"run `terraform fmt -recursive terraform`:\n{result.stdout}"


@needs_terraform
@pytest.mark.parametrize("module", ["root", "modules/functions"])
def test_module_validates_offline(module, tmp_path):
    # The root module uses every other module, so validating it validates them; the
    # functions module is instantiated by later stacks, so it is validated on its own.
    source = TERRAFORM_DIR if module == "root" else TERRAFORM_DIR / module
    workdir = tmp_path / "module"
    shutil.copytree(source, workdir, ignore=shutil.ignore_patterns(".terraform*", "*.tfstate*"))
    config = write_cli_config(tmp_path / "terraformrc")
    tf = Terraform(
        workdir=workdir, env={"TF_CLI_CONFIG_FILE": str(config)}, data_dir=tmp_path / "data"
    )
    # With the network cut where the machine allows it: init must need only the mirror.
    offline = ["unshare", "--net"] if _can_cut_network() else []
    init = subprocess.run(
        [*offline, "terraform", f"-chdir={workdir}", "init", "-backend=false", "-no-color"],
        env=tf._environ(with_workspace=False),
        capture_output=True,
        text=True,
        check=False,
    )
    assert init.returncode == 0, init.stdout + init.stderr
    result = json.loads(tf.run("validate", "-json", "-no-color"))
    assert result["valid"], result["diagnostics"]
    assert result["warning_count"] == 0, result["diagnostics"]


def _can_cut_network() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "--net", "true"], capture_output=True, check=False)
    return probe.returncode == 0


@pytest.mark.skipif(not CHECKOV.exists(), reason="checkov not installed: run scripts/checkov.sh")
def test_checkov_finds_no_failed_checks():
    result = subprocess.run(
        [str(ROOT / "scripts" / "checkov.sh"), "--output", "json"],
        capture_output=True,
        text=True,
        check=False,
    )
    report = json.loads(result.stdout)
    reports = report if isinstance(report, list) else [report]
    failed = [
        f"{check['check_id']} {check['resource']} ({check['file_path']})"
        for r in reports
        for check in r["results"]["failed_checks"]
    ]
    assert not failed, "checkov failed checks:\n" + "\n".join(failed)
    assert result.returncode == 0, result.stderr[-2000:]


def _blocks(text: str, kind: str) -> dict[str, str]:
    """Top-level ``kind "name" { ... }`` blocks of an HCL file, by name (brace matching)."""
    blocks = {}
    for match in re.finditer(rf'^{kind} "([^"]+)" \{{', text, flags=re.MULTILINE):
        depth, end = 0, match.end() - 1
        for end in range(match.end() - 1, len(text)):
            depth += {"{": 1, "}": -1}.get(text[end], 0)
            if depth == 0:
                break
        blocks[match[1]] = text[match.end() : end]
    return blocks


@pytest.mark.parametrize("module", [TERRAFORM_DIR, *MODULES], ids=lambda p: p.name)
def test_module_follows_the_house_layout(module):
    for name in ("main.tf", "variables.tf", "outputs.tf", "versions.tf"):
        assert (module / name).is_file(), f"{module.name} lacks {name}"
    for name, body in _blocks((module / "variables.tf").read_text(), "variable").items():
        assert re.search(r"^\s*type\s*=", body, re.MULTILINE), f"variable {name} has no type"
        assert re.search(r"^\s*description\s*=", body, re.MULTILINE), f"{name}: no description"
        assert not re.search(r"^\s*type\s*=\s*any\b", body, re.MULTILINE), f"{name}: type any"
    for name, body in _blocks((module / "outputs.tf").read_text(), "output").items():
        assert "description" in body, f"output {name} has no description"


def test_every_workspace_has_settings_and_prod_is_hardened():
    workspaces = {p.stem: p.read_text() for p in (TERRAFORM_DIR / "workspaces").glob("*.tfvars")}
    assert {"local", "dev", "staging", "prod"} <= set(workspaces)
    prod = workspaces["prod"]
    assert re.search(r"on_demand\s*=\s*true", prod)
    assert re.search(r"deletion_protection\s*=\s*true", prod)
    assert re.search(r"log_retention_days\s*=\s*365", prod)


def test_no_generated_or_state_files_are_tracked():
    tracked = subprocess.run(
        ["git", "ls-files", "terraform"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    forbidden = re.compile(r"(\.tfstate|_override\.tf$|\.terraform/|\.terraformrc$|backend\.hcl$)")
    assert not [path for path in tracked if forbidden.search(path)]
