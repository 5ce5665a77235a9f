"""``make package``: the same inputs give the same bytes, with exactly what the functions import.

The package is built once for the module. The import test runs a fresh interpreter with no
site-packages at all: on its path are only the unpacked package and what Lambda supplies
(the runtime's boto3 and its dependencies, pyarrow from the AWS SDK for pandas layer), so a
module of the Lambda folder that imported moto, duckdb, sqlglot, rich or anything of
``pipelines_local`` would fail here.
"""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from pipelines_local.packaging import PROJECT_ROOT, Package, build_package

# What the Lambda Python runtime (boto3 and its dependencies) and the pandas layer supply.
PROVIDED_ON_AWS = ("boto3", "botocore", "s3transfer", "dateutil", "urllib3", "pyarrow")
LOCAL_ONLY = ("moto", "duckdb", "sqlglot", "rich", "pipelines_local", "pytest")


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Package:
    return build_package(tmp_path_factory.mktemp("package") / "a.zip")


def test_the_package_is_deterministic_and_complete(package: Package, tmp_path: Path) -> None:
    second = build_package(tmp_path / "b.zip")
    assert package.sha256 == second.sha256
    assert package.path.read_bytes() == (tmp_path / "b.zip").read_bytes()

    with zipfile.ZipFile(package.path) as archive:
        names = archive.namelist()
        infos = archive.infolist()
    assert names == sorted(names)
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    for needed in (
        "pipelines/contract/codec.py",
        "pipelines/consumers/batch.py",
        "functions/projector/handler.py",
        "functions/archiver/handler.py",
        "functions/lake_writer/handler.py",
        "functions/lake_compactor/handler.py",
        "functions/alerter/handler.py",
        "pipelines/_schemas/EventMetadata.avsc",
        "pipelines/_schemas/history/FINGERPRINTS",
        "fastavro/__init__.py",
        "aws_kinesis_agg/aggregator.py",
        "aws_lambda_powertools/__init__.py",
        "google/protobuf/__init__.py",
    ):
        assert needed in names, needed
    # Built for Lambda (manylinux x86_64, CPython 3.11), not for this machine by accident.
    assert any(n.startswith("fastavro/_read.cpython-311-x86_64-linux-gnu") for n in names)
    # What runs on a laptop is another folder, and not in the package.
    assert not [n for n in names if n.startswith("pipelines_local/")]
    assert "functions/requirements.txt" not in names


def _lambda_task(
    package: Package, tmp_path: Path, provided_names: tuple[str, ...]
) -> tuple[Path, Path]:
    """The unpacked package, and a folder of what the runtime (and layers) provide."""
    task_root = tmp_path / "task"
    with zipfile.ZipFile(package.path) as archive:
        archive.extractall(task_root)
    provided = tmp_path / "runtime"
    provided.mkdir()
    site = Path(sysconfig.get_paths()["purelib"])
    for name in provided_names:
        (provided / name).symlink_to(site / name)
    return task_root, provided


def test_every_module_of_the_lambda_folder_imports_with_only_the_functions_requirements(
    package: Package, tmp_path: Path
) -> None:
    task_root, provided = _lambda_task(package, tmp_path, PROVIDED_ON_AWS)
    script = f"""
import importlib, json, pkgutil, sys
sys.path[:0] = [{str(task_root)!r}, {str(provided)!r}]
imported, failed = [], {{}}
for top in ("pipelines", "functions"):
    package = importlib.import_module(top)
    for info in pkgutil.walk_packages(package.__path__, top + "."):
        try:
            importlib.import_module(info.name)
            imported.append(info.name)
        except Exception as exc:
            failed[info.name] = repr(exc)
local = sorted(m for m in sys.modules if m.split(".")[0] in {LOCAL_ONLY!r})
print(json.dumps({{"imported": imported, "failed": failed, "local": local,
                  "origin": importlib.import_module("pipelines").__file__}}))
"""
    completed = subprocess.run(
        [sys.executable, "-I", "-S", "-c", script],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "AWS_DEFAULT_REGION": "us-east-1"},
    )
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    assert result["failed"] == {}
    assert result["local"] == []
    assert result["origin"].startswith(str(task_root))
    expected = set()
    for top in ("pipelines", "functions"):
        for path in (PROJECT_ROOT / top).rglob("*.py"):
            parts = path.relative_to(PROJECT_ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            if name not in ("pipelines", "functions"):
                expected.add(name)
    assert set(result["imported"]) == expected


def test_the_functions_without_the_pandas_layer_import_without_pyarrow(
    package: Package, tmp_path: Path
) -> None:
    """Only the lake writer has the AWS SDK for pandas layer; the others must not need it."""
    without_layer = tuple(n for n in PROVIDED_ON_AWS if n != "pyarrow")
    task_root, provided = _lambda_task(package, tmp_path, without_layer)
    script = f"""
import importlib, json, sys
sys.path[:0] = [{str(task_root)!r}, {str(provided)!r}]
failed = {{}}
for name in ("functions.archiver.handler", "functions.projector.handler",
             "functions.alerter.handler"):
    try:
        importlib.import_module(name)
    except Exception as exc:
        failed[name] = repr(exc)
print(json.dumps({{"failed": failed, "pyarrow": "pyarrow" in sys.modules}}))
"""
    completed = subprocess.run(
        [sys.executable, "-I", "-S", "-c", script],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "AWS_DEFAULT_REGION": "us-east-1"},
    )
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    assert result == {"failed": {}, "pyarrow": False}
