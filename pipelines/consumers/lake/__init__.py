"""The lake: one Apache Iceberg table per event type, the writer that fills it, and the
compactor that keeps its partitions few-filed and its history bounded."""

from pipelines.consumers.lake.compaction import Compactor, PartitionCompaction, TableCompaction
from pipelines.consumers.lake.iceberg import (
    Commit,
    IcebergCommitter,
    LakeCatalog,
    glue_catalog,
    watermark_of,
    watermark_property,
)
from pipelines.consumers.lake.maintenance import build_lake_compactor, compact_lake
from pipelines.consumers.lake.parquet import LakeBuild, LakeRows, LakeTables, RejectedRow
from pipelines.consumers.lake.retention import Retention
from pipelines.consumers.lake.schema import hive_type_of, lake_schema, table_name
from pipelines.consumers.lake.writer import LakeWriter, build_lake_writer

__all__ = [
    "Commit",
    "Compactor",
    "IcebergCommitter",
    "LakeBuild",
    "LakeCatalog",
    "LakeRows",
    "LakeTables",
    "LakeWriter",
    "PartitionCompaction",
    "RejectedRow",
    "Retention",
    "TableCompaction",
    "build_lake_compactor",
    "build_lake_writer",
    "compact_lake",
    "glue_catalog",
    "hive_type_of",
    "lake_schema",
    "table_name",
    "watermark_of",
    "watermark_property",
]
