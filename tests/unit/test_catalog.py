"""Glue columns derived from the Avro schemas, and the committed tables.json."""

from __future__ import annotations

import json

import pytest

from pipelines_local.catalog import (
    TABLES_JSON,
    CatalogError,
    glue_columns,
    hive_type,
    render_catalog_tables,
    table_name,
    write_catalog_tables,
)

METADATA = {
    "type": "record",
    "name": "EventMetadata",
    "fields": [
        {"name": "event_id", "type": {"type": "string", "logicalType": "uuid"}},
        {"name": "occurred_at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "aggregate_version", "type": ["null", "long"], "default": None},
    ],
}


@pytest.mark.parametrize(
    ("avro", "hive"),
    [
        ("long", "bigint"),
        ("int", "int"),
        ("double", "double"),
        ("float", "float"),
        ("boolean", "boolean"),
        ("string", "string"),
        ("bytes", "binary"),
        ({"type": "string", "logicalType": "uuid"}, "string"),
        ({"type": "long", "logicalType": "timestamp-millis"}, "timestamp"),
        ({"type": "bytes", "logicalType": "decimal", "precision": 18, "scale": 4}, "decimal(18,4)"),
        ({"type": "map", "values": "string"}, "map<string,string>"),
        (["null", {"type": "map", "values": "long"}], "map<string,bigint>"),
        (["null", "string"], "string"),
        ({"type": "enum", "name": "Status", "symbols": ["A", "B"]}, "string"),
        (
            {
                "type": "array",
                "items": {
                    "type": "record",
                    "name": "Label",
                    "fields": [
                        {"name": "name", "type": "string"},
                        {"name": "confidence", "type": "float"},
                    ],
                },
            },
            "array<struct<name:string,confidence:float>>",
        ),
    ],
)
def test_avro_types_map_to_the_hive_types_athena_reads(avro, hive):
    assert hive_type(avro) == hive


def test_metadata_is_flattened_ahead_of_the_body_fields():
    schema = {
        "type": "record",
        "name": "Thing",
        "fields": [
            {"name": "metadata", "type": METADATA},
            {"name": "amount", "type": "double"},
        ],
    }
    assert glue_columns(schema) == [
        {"name": "event_id", "type": "string"},
        {"name": "occurred_at", "type": "timestamp"},
        {"name": "aggregate_version", "type": "bigint"},
        {"name": "amount", "type": "double"},
    ]


def test_a_union_of_two_real_types_is_refused():
    with pytest.raises(CatalogError):
        hive_type(["null", "string", "long"])


def test_a_body_field_that_shadows_a_metadata_column_is_refused():
    schema = {
        "type": "record",
        "name": "Thing",
        "fields": [
            {"name": "metadata", "type": METADATA},
            {"name": "event_id", "type": "string"},
        ],
    }
    with pytest.raises(CatalogError, match="event_id"):
        glue_columns(schema)


def test_table_names_are_snake_case_event_types():
    assert table_name("TransactionRecorded") == "transaction_recorded"
    assert table_name("UserProfileUpdated") == "user_profile_updated"


def test_committed_tables_json_matches_the_schemas():
    expected = render_catalog_tables()
    assert TABLES_JSON.read_text() == expected, (
        "terraform/modules/catalog/tables.json is stale: run "
        "`python -m pipelines_local.catalog` and commit the result"
    )


def test_every_event_type_has_a_partitioned_table(tmp_path):
    tables = json.loads(write_catalog_tables(tmp_path / "tables.json").read_text())
    assert tables["TransactionRecorded"]["table_name"] == "transaction_recorded"
    amount = {"name": "amount", "type": "decimal(18,4)"}
    assert amount in tables["TransactionRecorded"]["columns"]
    for table in tables.values():
        assert table["partition_keys"] == [{"name": "dt", "type": "string"}]
        assert table["columns"][0] == {"name": "event_id", "type": "string"}
