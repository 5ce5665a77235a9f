"""``make package``: the same inputs give the same bytes, with exactly what the functions import."""

from __future__ import annotations

import zipfile
from pathlib import Path

from pipelines_local.packaging import build_package


def test_the_package_is_deterministic_and_complete(tmp_path: Path) -> None:
    first = build_package(tmp_path / "a.zip")
    second = build_package(tmp_path / "b.zip")
    assert first.sha256 == second.sha256
    assert (tmp_path / "a.zip").read_bytes() == (tmp_path / "b.zip").read_bytes()

    with zipfile.ZipFile(first.path) as archive:
        names = archive.namelist()
        infos = archive.infolist()
    assert names == sorted(names)
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    for needed in (
        "pipelines/contract/codec.py",
        "pipelines/consumers/batch.py",
        "functions/projector/handler.py",
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
