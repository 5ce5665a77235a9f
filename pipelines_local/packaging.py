"""``make package``: the Lambda deployment package, built deterministically.

The package is one zip for every function (they differ only by handler): the
``pipelines`` folder whole, with its schemas, the thin ``functions`` entry points, and
the pinned dependencies of ``functions/requirements.txt`` as built for the Lambda
runtime Terraform deploys (``terraform/lambda.json``: the Python version and the
instruction set, declared once; manylinux wheels, never the machine's own builds).
What runs only on a laptop is another folder (``pipelines_local``) and so is not in the
package. Same inputs, same bytes: entries are sorted, dated 1980-01-01, with fixed
permissions, and caches are left out.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pipelines.errors import PipelineError

logger = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
LAMBDA_RUNTIME_FILE = PROJECT_ROOT / "terraform" / "lambda.json"
_PLATFORMS = {"x86_64": "manylinux2014_x86_64", "arm64": "manylinux2014_aarch64"}
_SKIP_DIRS = {"__pycache__", ".mypy_cache", ".pytest_cache"}
_FIXED_DATE = (1980, 1, 1, 0, 0, 0)


class PackagingError(PipelineError):
    """The deployment package could not be built."""


@dataclass(frozen=True)
class LambdaRuntime:
    """What the functions run on, as ``terraform/lambda.json`` declares it."""

    runtime: str  # python3.11
    architecture: str  # x86_64

    @property
    def python_version(self) -> str:
        return self.runtime.removeprefix("python")

    @property
    def platform(self) -> str:
        """The wheels' platform tag pip installs for."""
        return _PLATFORMS[self.architecture]

    @classmethod
    def declared(cls, path: Path = LAMBDA_RUNTIME_FILE) -> LambdaRuntime:
        data = json.loads(path.read_text())
        return cls(str(data["runtime"]), str(data["architecture"]))


@dataclass(frozen=True)
class Package:
    path: Path
    sha256: str
    size: int
    files: int


def _files(root: Path, prefix: str) -> Iterator[tuple[str, Path]]:
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if any(part in _SKIP_DIRS for part in rel.parts) or path.suffix in (".pyc", ".pyo"):
            continue
        if path.is_file():
            yield f"{prefix}{rel.as_posix()}", path


def _source_files(project: Path) -> Iterator[tuple[str, Path]]:
    yield from _files(project / "pipelines", "pipelines/")
    yield from _files(project / "schemas", "pipelines/_schemas/")
    for name, path in _files(project / "functions", "functions/"):
        if not name.endswith("requirements.txt"):
            yield name, path


def install_dependencies(
    requirements: Path, target: Path, wheel_cache: Path, runtime: LambdaRuntime | None = None
) -> None:
    """Install the pinned dependencies as built for Lambda into ``target``."""
    runtime = runtime or LambdaRuntime.declared()
    if target.exists():
        shutil.rmtree(target)
    command = [
        sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
        "--no-deps", "--only-binary=:all:", "--no-compile",
        "--platform", runtime.platform, "--python-version", runtime.python_version,
        "--implementation", "cp", "--cache-dir", str(wheel_cache),
        "--target", str(target), "-r", str(requirements),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise PackagingError(f"pip could not install the Lambda dependencies:\n{result.stderr}")


def _write_zip(entries: list[tuple[str, Path]], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name, path in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=_FIXED_DATE)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3
            archive.writestr(info, path.read_bytes(), compresslevel=9)
    tmp.replace(out)


def default_package_path(project: Path = PROJECT_ROOT) -> Path:
    return project / "build" / "lambda" / "pipelines.zip"


def build_package(out: Path | None = None, project: Path = PROJECT_ROOT) -> Package:
    """Build ``build/lambda/pipelines.zip`` (or ``out``) and return its digest."""
    build = project / "build"
    out = out or default_package_path(project)
    deps = build / "lambda-deps"
    install_dependencies(project / "functions" / "requirements.txt", deps, build / "wheel-cache")
    entries = list(_files(deps, ""))
    names = {name for name, _ in entries}
    for name, path in _source_files(project):
        if name in names:
            raise PackagingError(f"{name} is both a dependency file and a project file")
        entries.append((name, path))
    _write_zip(entries, out)
    data = out.read_bytes()
    package = Package(out, hashlib.sha256(data).hexdigest(), len(data), len(entries))
    out.with_suffix(".zip.sha256").write_text(f"{package.sha256}  {out.name}\n")
    logger.info("built %s: %d files, %d bytes", out, package.files, package.size)
    return package
