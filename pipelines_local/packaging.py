"""``make package``: the Lambda deployment package and the lake layer, built deterministically.

The package is one zip for every function (they differ only by handler): the
``pipelines`` folder whole, with its schemas, the thin ``functions`` entry points, and
the pinned dependencies of ``functions/requirements.txt`` as built for the Lambda
runtime Terraform deploys (``terraform/lambda.json``: the Python version and the
instruction set, declared once; manylinux wheels, never the machine's own builds).
What runs only on a laptop is another folder (``pipelines_local``) and so is not in the
package. Same inputs, same bytes: entries are sorted, dated 1980-01-01, with fixed
permissions, and caches are left out.

The lake layer is what only the lake writer needs on top (pyarrow, pyiceberg and what they
import: ``functions/lake-requirements.txt``), under ``python/`` as Lambda layers are laid
out, built the same way and trimmed of what the writer never loads
(:data:`LAKE_LAYER_TRIM`). Lambda refuses a function whose code and layers together
exceed :data:`UNZIPPED_LIMIT` once unzipped, so :func:`build_packages` fails well before
that (:func:`check_unzipped_sizes`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

from pipelines.errors import PipelineError

logger = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
LAMBDA_RUNTIME_FILE = PROJECT_ROOT / "terraform" / "lambda.json"
_PLATFORMS = {"x86_64": "manylinux2014_x86_64", "arm64": "manylinux2014_aarch64"}
_SKIP_DIRS = {"__pycache__", ".mypy_cache", ".pytest_cache"}
_FIXED_DATE = (1980, 1, 1, 0, 0, 0)
LAYER_PREFIX = "python/"  # where a Python layer's modules go: /opt/python is on sys.path

# Lambda's quota for a function's code and all its layers, unzipped: "250 MB", which the
# API counts in MiB ("Unzipped size must be smaller than 262144000 bytes").
UNZIPPED_LIMIT = 262_144_000
# `make package` fails above this share of the limit: the rest is room for the layers a
# workspace adds (`lake_writer_layers`) and for the dependencies' growth.
UNZIPPED_BUDGET = 0.9

# What the lake writer never loads, left out of the lake layer: fnmatch patterns of paths
# under python/ (the first that matches a file counts it), each with its reason. Every rule
# must match something, so a stale one fails the build after an upgrade. Every pyarrow
# library an extension module links stays (pyarrow.lib itself links parquet, dataset,
# acero and substrait); tests/unit/test_packaging.py imports each extension module the
# layer keeps, and runs the writer on the package and the layer alone.
LAKE_LAYER_TRIM: Mapping[str, str] = {
    "pyarrow/*flight*": "Arrow Flight RPC (libarrow_flight and its bindings)",
    "pyarrow/libarrow_python*.so": "unversioned copies (a wheel holds no symlinks; what links "
    "them asks for the .so.<soversion> names)",
    "pyarrow/libarrow_python*.so.*.*.*": "fully versioned copies, likewise",
    "pyarrow/include/*": "Arrow's C++ headers, for building against pyarrow",
    "pyarrow/src/*": "the C++ sources of libarrow_python",
    "pyarrow/tests/*": "pyarrow's test suite",
    "pyarrow/conftest.py": "pyarrow's test suite",
    "pyarrow/_pyarrow_cpp_tests.*": "pyarrow's C++ tests",
    "zstandard/_cffi.*": "zstandard's CFFI backend (CPython loads the C one)",
    "zstandard/backend_cffi.py": "zstandard's CFFI backend (CPython loads the C one)",
    "hive_metastore/*": "the Thrift client of pyiceberg's Hive catalog",
    "fb303/*": "the Thrift client of pyiceberg's Hive catalog",
    "bin/*": "console scripts (pyiceberg's CLI)",
    "*.pyx": "Cython sources",
    "*.pxd": "Cython declarations",
    "*.pxi": "Cython includes",
    "*.h": "C and C++ headers",
    "*.pyi": "type stubs",
}


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
    """A built zip: its digest, its size zipped (``size``) and once unzipped (``unzipped``)."""

    path: Path
    sha256: str
    size: int
    files: int
    unzipped: int


@dataclass(frozen=True)
class Packages:
    """What ``make package`` builds: the functions' package and the lake writer's layer."""

    package: Package
    lake_layer: Package

    @property
    def lake_writer_unzipped(self) -> int:
        """What the lake writer's code and layer come to, unzipped."""
        return self.package.unzipped + self.lake_layer.unzipped


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


def _write_zip(entries: list[tuple[str, Path]], out: Path, compresslevel: int = 9) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=compresslevel) as archive:
        for name, path in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=_FIXED_DATE)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3
            archive.writestr(info, path.read_bytes(), compresslevel=compresslevel)
    tmp.replace(out)


def _finish(out: Path, entries: list[tuple[str, Path]], compresslevel: int = 9) -> Package:
    """Write the zip, its ``.sha256`` file beside it, and describe it."""
    _write_zip(entries, out, compresslevel)
    data = out.read_bytes()
    unzipped = sum(path.stat().st_size for _, path in entries)
    package = Package(out, hashlib.sha256(data).hexdigest(), len(data), len(entries), unzipped)
    out.with_suffix(".zip.sha256").write_text(f"{package.sha256}  {out.name}\n")
    logger.info(
        "built %s: %d files, %s zipped, %s unzipped",
        out,
        package.files,
        mib(package.size),
        mib(package.unzipped),
    )
    return package


def mib(size: int) -> str:
    return f"{size / 2**20:.1f} MiB"


def default_package_path(project: Path = PROJECT_ROOT) -> Path:
    return project / "build" / "lambda" / "pipelines.zip"


def default_lake_layer_path(project: Path = PROJECT_ROOT) -> Path:
    return project / "build" / "lambda" / "lake-layer.zip"


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
    return _finish(out, entries)


def trim(
    entries: Iterable[tuple[str, Path]], rules: Mapping[str, str] = LAKE_LAYER_TRIM
) -> tuple[list[tuple[str, Path]], dict[str, int]]:
    """``entries`` less those a rule matches, and the bytes each rule left out."""
    kept: list[tuple[str, Path]] = []
    left_out = dict.fromkeys(rules, 0)
    matched: set[str] = set()
    for name, path in entries:
        rule = next((r for r in rules if fnmatchcase(name, r)), None)
        if rule is None:
            kept.append((name, path))
        else:
            matched.add(rule)
            left_out[rule] += path.stat().st_size
    stale = [rule for rule in rules if rule not in matched]
    if stale:
        raise PackagingError(f"lake layer trim rules match nothing (stale?): {stale}")
    return kept, left_out


def build_lake_layer(out: Path | None = None, project: Path = PROJECT_ROOT) -> Package:
    """Build ``build/lambda/lake-layer.zip`` (or ``out``): the lake writer's own layer."""
    build = project / "build"
    out = out or default_lake_layer_path(project)
    deps = build / "lake-layer-deps"
    requirements = project / "functions" / "lake-requirements.txt"
    install_dependencies(requirements, deps, build / "wheel-cache")
    entries, left_out = trim(_files(deps, ""))
    for rule, size in sorted(left_out.items(), key=lambda item: -item[1]):
        logger.info("lake layer: left out %s of %s (%s)", mib(size), rule, LAKE_LAYER_TRIM[rule])
    # Level 6, not 9: a third of the time for 0.2 MiB more (the layer is mostly shared
    # libraries, which deflate barely shrinks further).
    layer = [(f"{LAYER_PREFIX}{name}", path) for name, path in entries]
    return _finish(out, layer, compresslevel=6)


def check_unzipped_sizes(
    package: Package,
    lake_layer: Package,
    *,
    limit: int = UNZIPPED_LIMIT,
    budget: float = UNZIPPED_BUDGET,
) -> None:
    """Fail if a function's code and layers, unzipped, would exceed ``budget`` of ``limit``.

    Every function has the package; the lake writer has the lake layer too.
    """
    allowed = int(limit * budget)
    of_limit = f"{budget:.0%} of Lambda's {mib(limit)} limit for a function and its layers"
    if package.unzipped > allowed:
        raise PackagingError(
            f"the functions' package is {mib(package.unzipped)} unzipped "
            f"({mib(package.size)} zipped), above {mib(allowed)} ({of_limit})"
        )
    total = package.unzipped + lake_layer.unzipped
    if total > allowed:
        raise PackagingError(
            f"the lake writer's package and lake layer come to {mib(total)} unzipped "
            f"(package {mib(package.unzipped)} + lake layer {mib(lake_layer.unzipped)}), "
            f"above {mib(allowed)} ({of_limit}); trim the layer (LAKE_LAYER_TRIM) or "
            "its requirements"
        )


def build_packages(
    out: Path | None = None, lake_layer_out: Path | None = None, project: Path = PROJECT_ROOT
) -> Packages:
    """``make package``: both zips, checked against Lambda's unzipped size limit."""
    built = Packages(build_package(out, project), build_lake_layer(lake_layer_out, project))
    check_unzipped_sizes(built.package, built.lake_layer)
    logger.info(
        "lake writer: %s unzipped of the %s allowed",
        mib(built.lake_writer_unzipped),
        mib(int(UNZIPPED_LIMIT * UNZIPPED_BUDGET)),
    )
    return built
