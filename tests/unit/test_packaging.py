"""``make package``: the same inputs give the same bytes, with exactly what the functions import.

The package and the lake layer are built once for the module. The import tests run a fresh
interpreter with no site-packages at all: on its path are only the unpacked package, the
unpacked lake layer where the function has it, and what the Lambda runtime supplies (boto3
and its dependencies), so a module of the Lambda folder that imported moto, duckdb, sqlglot,
rich or anything of ``pipelines_local`` would fail here, and so would a lake writer that
needed something the layer lacks or trimmed.
"""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
import zipfile
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import pytest

from pipelines.consumers.lake import table_name
from pipelines_local.packaging import (
    LAKE_LAYER_TRIM,
    PROJECT_ROOT,
    Package,
    PackagingError,
    build_lake_layer,
    build_package,
    check_unzipped_sizes,
)
from pipelines_local.simulator import simulate
from tests.kinesis_events import plain_records

# What the Lambda Python runtime supplies: boto3 and its dependencies.
PROVIDED_ON_AWS = ("boto3", "botocore", "s3transfer", "dateutil", "urllib3")
LOCAL_ONLY = ("moto", "duckdb", "sqlglot", "rich", "pipelines_local", "pytest")
# The lake layer's test stands a SQLite catalog in for Glue.
CATALOG_STAND_IN = ("sqlalchemy",)


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Package:
    return build_package(tmp_path_factory.mktemp("package") / "a.zip")


@pytest.fixture(scope="module")
def lake_layer(tmp_path_factory: pytest.TempPathFactory) -> Package:
    return build_lake_layer(tmp_path_factory.mktemp("layer") / "lake-layer.zip")


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
    """The unpacked package, and a folder of what the runtime provides."""
    task_root = tmp_path / "task"
    with zipfile.ZipFile(package.path) as archive:
        archive.extractall(task_root)
    provided = tmp_path / "runtime"
    provided.mkdir()
    site = Path(sysconfig.get_paths()["purelib"])
    for name in provided_names:
        (provided / name).symlink_to(site / name)
    return task_root, provided


def _unpacked_layer(layer: Package, tmp_path: Path) -> Path:
    """The layer's ``python/`` folder, as Lambda puts it on the path (``/opt/python``)."""
    with zipfile.ZipFile(layer.path) as archive:
        archive.extractall(tmp_path / "opt")
    return tmp_path / "opt" / "python"


def _isolated(script: str, cwd: Path) -> Any:
    """What ``script`` prints last, as JSON, run by an interpreter without site-packages."""
    completed = subprocess.run(
        [sys.executable, "-I", "-S", "-c", script],
        capture_output=True,
        text=True,
        check=True,
        cwd=cwd,
        env={"PATH": "/usr/bin:/bin", "AWS_DEFAULT_REGION": "us-east-1"},
    )
    return json.loads(completed.stdout.strip().splitlines()[-1])


def test_every_module_of_the_lambda_folder_imports_with_only_the_functions_requirements(
    package: Package, lake_layer: Package, tmp_path: Path
) -> None:
    task_root, provided = _lambda_task(package, tmp_path, PROVIDED_ON_AWS)
    layer = _unpacked_layer(lake_layer, tmp_path)
    script = f"""
import importlib, json, pkgutil, sys
sys.path[:0] = [{str(task_root)!r}, {str(layer)!r}, {str(provided)!r}]
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
    result = _isolated(script, tmp_path)
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


def test_the_functions_without_the_lake_layer_import_without_pyarrow(
    package: Package, tmp_path: Path
) -> None:
    """Only the lake writer has the lake layer; the others must not need it."""
    task_root, provided = _lambda_task(package, tmp_path, PROVIDED_ON_AWS)
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
print(json.dumps({{"failed": failed, "pyarrow": "pyarrow" in sys.modules,
                  "pyiceberg": "pyiceberg" in sys.modules}}))
"""
    result = _isolated(script, tmp_path)
    assert result == {"failed": {}, "pyarrow": False, "pyiceberg": False}


def test_the_packaged_pillow_is_built_for_lambda_and_makes_thumbnails(
    package: Package, tmp_path: Path
) -> None:
    """Pillow's manylinux2014 wheel (glibc 2.17, under Lambda's 2.26), loaded from the package."""
    with zipfile.ZipFile(package.path) as archive:
        wheel_tags = [
            n for n in archive.namelist() if n.startswith("pillow-") and n.endswith("WHEEL")
        ]
        tags = archive.read(wheel_tags[0]).decode()
    assert "Tag: cp311-cp311-manylinux2014_x86_64" in tags
    task_root, provided = _lambda_task(package, tmp_path, PROVIDED_ON_AWS)
    script = f"""
import io, json, sys
sys.path[:0] = [{str(task_root)!r}, {str(provided)!r}]
from PIL import Image
from pipelines.images import make_thumbnail
buffer = io.BytesIO()
Image.new("RGB", (1200, 900), (200, 10, 10)).save(buffer, format="JPEG")
thumbnail = make_thumbnail(buffer.getvalue())
print(json.dumps({{"size": [thumbnail.width, thumbnail.height], "type": thumbnail.content_type,
                  "pil": Image.__file__}}))
"""
    result = _isolated(script, tmp_path)
    assert result["size"] == [256, 192] and result["type"] == "image/webp"
    assert result["pil"].startswith(str(task_root))


def test_the_lake_layer_is_deterministic_and_laid_out_for_lambda(
    lake_layer: Package, package: Package, tmp_path: Path
) -> None:
    second = build_lake_layer(tmp_path / "b.zip")
    assert second.sha256 == lake_layer.sha256

    with zipfile.ZipFile(lake_layer.path) as archive:
        infos = archive.infolist()
    names = [i.filename for i in infos]
    assert names == sorted(names)
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert all(n.startswith("python/") for n in names)
    assert lake_layer.unzipped == sum(i.file_size for i in infos)
    for needed in (
        "python/pyarrow/__init__.py",
        "python/pyarrow/parquet/core.py",
        "python/pyiceberg/catalog/glue.py",
        "python/pyiceberg/io/pyarrow.py",
        "python/pydantic_core/__init__.py",
        "python/zstandard/__init__.py",
    ):
        assert needed in names, needed
    # Built for Lambda (manylinux x86_64, CPython 3.11), as the package is.
    assert any(n.startswith("python/pyarrow/lib.cpython-311-x86_64-linux-gnu") for n in names)
    # Trimmed, and nothing Lambda or the package already supplies.
    trimmed = [n for n in names if any(fnmatchcase(n[7:], rule) for rule in LAKE_LAYER_TRIM)]
    assert trimmed == []
    tops = {n.split("/")[1].split(".")[0].split("-")[0] for n in names}
    assert not tops & {"boto3", "botocore", "s3transfer", "dateutil", "urllib3", "pyiceberg_core"}
    with zipfile.ZipFile(package.path) as archive:
        in_package = {n.split("/")[0].split(".")[0].split("-")[0] for n in archive.namelist()}
    assert not tops & in_package, "the function's copy would shadow the layer's"


def test_the_lake_writer_runs_on_its_package_and_layer_alone(
    package: Package, lake_layer: Package, tmp_path: Path
) -> None:
    """Batches committed to Iceberg tables, read back, with only what Lambda would have."""
    task_root, provided = _lambda_task(package, tmp_path, PROVIDED_ON_AWS + CATALOG_STAND_IN)
    layer = _unpacked_layer(lake_layer, tmp_path)
    events = simulate(60, 11).events
    batches = [
        plain_records(events),
        plain_records(events),  # redelivered: the watermark covers it
        plain_records(events[:20], first=500),  # replayed: the ids are in the tables
    ]
    warehouse = tmp_path / "warehouse"
    warehouse.mkdir()
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {
                "path": [str(task_root), str(layer), str(provided)],
                "layer": str(layer),
                "warehouse": str(warehouse),
                "batches": batches,
            }
        )
    )
    completed = subprocess.run(
        [sys.executable, "-I", "-S", str(Path(__file__).with_name("lake_writer_alone.py")), config],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "AWS_DEFAULT_REGION": "us-east-1"},
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    result = json.loads(completed.stdout.strip().splitlines()[-1])

    assert result["failures"] == []
    assert result["quarantined"] == []
    expected: dict[str, list[str]] = {}
    for event in events:
        table = table_name(event["metadata"]["event_type"])
        expected.setdefault(table, []).append(event["metadata"]["event_id"])
    assert result["tables"] == {table: sorted(ids) for table, ids in expected.items()}
    assert result["codecs"] == ["ZSTD"]
    assert result["refused"] == "ValueError"
    assert {name: error for name, error in result["extensions"].items() if error} == {}
    assert {"pyarrow._parquet", "pyarrow._dataset", "pyarrow._s3fs"} <= set(result["extensions"])
    assert {"pyarrow", "pyiceberg", "pydantic", "pydantic_core"} <= set(result["from_layer"])
    assert not set(result["modules"]) & {"moto", "duckdb", "sqlglot", "pipelines_local", "pytest"}


def _built(unzipped: int, size: int = 1) -> Package:
    return Package(Path("x.zip"), "0" * 64, size, 1, unzipped)


def test_the_size_check_refuses_a_lake_writer_above_its_share_of_the_limit() -> None:
    check_unzipped_sizes(_built(40), _built(49), limit=100, budget=0.9)  # 89 of 90: fits
    with pytest.raises(PackagingError) as refused:
        check_unzipped_sizes(_built(40), _built(51), limit=100, budget=0.9)
    message = str(refused.value)
    assert "lake writer" in message and "90%" in message


def test_the_size_check_refuses_a_package_too_large_for_every_function() -> None:
    with pytest.raises(PackagingError, match="functions' package"):
        check_unzipped_sizes(_built(95), _built(0), limit=100, budget=0.9)


def test_the_figures_of_the_refusal_are_in_mib() -> None:
    mib = 2**20
    with pytest.raises(PackagingError) as refused:
        check_unzipped_sizes(_built(20 * mib), _built(210 * mib))
    message = str(refused.value)
    assert "230.0 MiB" in message  # the lake writer's total
    assert "package 20.0 MiB + lake layer 210.0 MiB" in message
    assert "225.0 MiB" in message and "250.0 MiB" in message
