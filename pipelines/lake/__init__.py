"""The lake: one Parquet dataset per event type, and the writer that fills it and the archive."""

from pipelines.lake.parquet import LakeFile, LakeTables
from pipelines.lake.schema import hive_type_of, lake_schema
from pipelines.lake.store import ObjectStore, s3_filesystem
from pipelines.lake.writer import LakeBatchResult, LakeWriter, batch_stem, build_lake_writer

__all__ = [
    "LakeBatchResult",
    "LakeFile",
    "LakeTables",
    "LakeWriter",
    "ObjectStore",
    "batch_stem",
    "build_lake_writer",
    "hive_type_of",
    "lake_schema",
    "s3_filesystem",
]
