"""The lake: one Apache Iceberg table per event type, and the writer that fills it."""

from pipelines.consumers.lake.iceberg import (
    Commit,
    IcebergCommitter,
    LakeCatalog,
    glue_catalog,
    watermark_of,
    watermark_property,
)
from pipelines.consumers.lake.parquet import LakeBuild, LakeRows, LakeTables, RejectedRow
from pipelines.consumers.lake.schema import hive_type_of, lake_schema, table_name
from pipelines.consumers.lake.writer import LakeWriter, build_lake_writer

__all__ = [
    "Commit",
    "IcebergCommitter",
    "LakeBuild",
    "LakeCatalog",
    "LakeRows",
    "LakeTables",
    "LakeWriter",
    "RejectedRow",
    "build_lake_writer",
    "glue_catalog",
    "hive_type_of",
    "lake_schema",
    "table_name",
    "watermark_of",
    "watermark_property",
]
