"""The lake's Parquet columns agree with the Glue tables and the Avro schemas."""

from __future__ import annotations

import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.consumers.lake import LakeTables, hive_type_of
from pipelines.contract.schemas import EVENT_TYPES, default_registry
from pipelines_local.catalog import METADATA_FIELD, TABLES_JSON, table_name

GLUE_TABLES = json.loads(TABLES_JSON.read_text())


def _avro_columns(event_type: str) -> list[str]:
    schema = default_registry().current[event_type].resolved
    names: list[str] = []
    for field in schema["fields"]:
        if field["name"] == METADATA_FIELD:
            names.extend(f["name"] for f in field["type"]["fields"])
        else:
            names.append(field["name"])
    return names


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_glue_parquet_and_avro_columns_agree(event_type: str) -> None:
    tables = LakeTables()
    # What a Parquet reader sees, not only what the writer meant to write.
    written = pq.read_schema(io.BytesIO(tables.to_parquet(tables.schema(event_type).empty_table())))
    glue = GLUE_TABLES[event_type]
    assert glue["table_name"] == table_name(event_type)
    assert [{"name": f.name, "type": hive_type_of(f.type)} for f in written] == glue["columns"]
    assert written.names == _avro_columns(event_type)
    assert "dt" not in written.names  # the partition is in the key, as Glue expects
    assert [c["name"] for c in glue["partition_keys"]] == ["dt"]


def test_columns_have_the_types_athena_reads() -> None:
    tables = LakeTables()
    transaction = tables.schema("TransactionRecorded")
    assert transaction.field("occurred_at").type == pa.timestamp("ms", tz="UTC")
    assert transaction.field("amount").type == pa.decimal128(18, 4)
    assert transaction.field("aggregate_version").nullable
    assert not transaction.field("event_id").nullable
    assert tables.schema("MetricRecorded").field("tags").type == pa.map_(pa.string(), pa.string())
    labels = tables.schema("ImageLabeled").field("labels").type
    assert pa.types.is_list(labels)
    assert labels.value_type == pa.struct(
        [pa.field("name", pa.string(), nullable=False), pa.field("confidence", pa.float32(), False)]
    )
