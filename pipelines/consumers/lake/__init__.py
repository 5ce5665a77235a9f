"""The lake: one Parquet dataset per event type, and the writer that fills it."""

from pipelines.consumers.batch_keys import batch_stem
from pipelines.consumers.lake.parquet import LakeBuild, LakeFile, LakeTables, RejectedRow
from pipelines.consumers.lake.schema import hive_type_of, lake_schema, table_name
from pipelines.consumers.lake.writer import LakeWriter, build_lake_writer

__all__ = [
    "LakeBuild",
    "LakeFile",
    "LakeTables",
    "LakeWriter",
    "RejectedRow",
    "batch_stem",
    "build_lake_writer",
    "hive_type_of",
    "lake_schema",
    "table_name",
]
