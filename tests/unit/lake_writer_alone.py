"""The lake writer on its package and lake layer alone, in a bare interpreter.

Run by ``tests/unit/test_packaging.py`` as ``python -I -S lake_writer_alone.py CONFIG``, with
nothing on the path but what CONFIG's ``path`` lists (the unpacked package, the unpacked
layer's ``python/`` folder, and what the Lambda runtime provides). A SQLite catalog stands in
for Glue, and a local folder for S3; the rest is the code Lambda runs. Prints one JSON line.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Any

config = json.loads(Path(sys.argv[1]).read_text())
sys.path[:0] = config["path"]
warehouse = Path(config["warehouse"])
layer = Path(config["layer"])

import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
from pyiceberg.catalog.sql import SqlCatalog  # noqa: E402

import functions.lake_writer.handler  # noqa: E402, F401  (the entry point imports)
from pipelines.consumers.batch import KinesisBatchKernel  # noqa: E402
from pipelines.consumers.lake import LakeCatalog, LakeTables, LakeWriter  # noqa: E402


class Refused:
    """A quarantine that should never be needed: every event fits the lake."""

    def __init__(self) -> None:
        self.kept: list[str] = []

    def keep(self, record: Any, error: Exception) -> str:
        self.kept.append(repr(error))
        return "refused"


catalog = SqlCatalog("lake", uri=f"sqlite:///{warehouse}/catalog.db", warehouse=warehouse.as_uri())
catalog.create_namespace("lake")
lake = LakeCatalog(
    catalog,
    "lake",
    "lake-bucket",
    LakeTables(compression="zstd"),
    warehouse=(warehouse / "tables").as_uri(),
)
quarantine = Refused()
kernel = KinesisBatchKernel(LakeWriter(lake), quarantine)
failures = [
    repr(error)
    for batch in config["batches"]
    for error in kernel.process_batch(batch).errors
    if error is not None
]

tables: dict[str, list[str]] = {}
table = None
for identifier in catalog.list_tables("lake"):
    table = catalog.load_table(identifier)
    scanned = table.scan(selected_fields=("event_id",)).to_arrow()
    tables[identifier[-1]] = sorted(scanned.column("event_id").to_pylist())

codecs = set()
for path in (warehouse / "tables").rglob("*.parquet"):
    metadata = pq.ParquetFile(path).metadata
    for group in range(metadata.num_row_groups):
        for column in range(metadata.num_columns):
            codecs.add(metadata.row_group(group).column(column).compression)

# pyiceberg's schema check refuses a frame that lacks required columns (rich renders why).
refused = None
if table is not None:
    try:
        table.append(pa.table({"event_id": pa.array(["x"], pa.string())}))
    except ValueError as exc:
        refused = type(exc).__name__

# Every extension module the layer keeps loads: no library it links was trimmed.
extensions: dict[str, str | None] = {}
for path in sorted(layer.rglob("*.so")):
    if ".cpython-" not in path.name and ".abi3." not in path.name:
        continue
    parts = path.relative_to(layer).parts
    name = ".".join((*parts[:-1], parts[-1].split(".")[0]))
    try:
        importlib.import_module(name)
        extensions[name] = None
    except Exception as exc:
        extensions[name] = repr(exc)

tops = {name.split(".")[0] for name in sys.modules}
print(
    json.dumps(
        {
            "failures": failures,
            "quarantined": quarantine.kept,
            "tables": tables,
            "codecs": sorted(codecs),
            "refused": refused,
            "extensions": extensions,
            "from_layer": sorted(
                top
                for top in tops
                if str(getattr(sys.modules[top], "__file__", None) or "").startswith(str(layer))
            ),
            "modules": sorted(tops),
        }
    )
)
