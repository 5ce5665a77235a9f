"""A table written under an older schema gains the columns a newer one adds.

The older schema is the current one less a body field (``currency`` of a transaction), as a
table created before the field was released holds it. The next commit under the current
schema adds the column as optional; earlier columns keep their Iceberg field ids, earlier rows
read it as null, and newer rows carry their values.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from pipelines.consumers.lake import IcebergCommitter, LakeCatalog
from pipelines.contract.codec import decode_event, encode_event
from tests.lake import commit_events, local_lake
from tests.unit.test_lake_writer import sample_events

EVENT_TYPE = "TransactionRecorded"
ADDED = "currency"


class OlderLake(LakeCatalog):
    """The lake as a writer of the older schema saw it: no ``currency`` column."""

    def schema(self, event_type: str) -> pa.Schema:
        schema = super().schema(event_type)
        if event_type != EVENT_TYPE:
            return schema
        return schema.remove(schema.get_field_index(ADDED))


def test_a_field_a_newer_schema_adds_becomes_an_optional_column(tmp_path: Path) -> None:
    events = [decode_event(encode_event(e)) for e in sample_events(240)]
    transactions = [e for e in events if e.event_type == EVENT_TYPE]
    older_events, newer_events = (
        transactions[: len(transactions) // 2],
        transactions[len(transactions) // 2 :],
    )
    current = local_lake(tmp_path)
    older = OlderLake(
        current.catalog,
        current.database,
        current.lake_bucket,
        current.tables,
        warehouse=current.warehouse,
    )
    built = older.tables.build(older_events)
    (rows,) = built.rows
    sequences = list(range(1, len(older_events) + 1))
    IcebergCommitter(older).commit(
        EVENT_TYPE, rows.table.drop_columns([ADDED]), sequences, "shard-1", sequences[-1]
    )
    before = older.table(EVENT_TYPE, refresh=True).schema()
    assert ADDED not in {f.name for f in before.fields}

    commit_events(current, newer_events, shard="shard-2")

    after = current.table(EVENT_TYPE, refresh=True).schema()
    ids_before = {f.name: f.field_id for f in before.fields}
    assert {f.name: f.field_id for f in after.fields if f.name in ids_before} == ids_before
    added = after.find_field(ADDED)
    assert not added.required and added.field_id > max(ids_before.values())
    scanned = current.table(EVENT_TYPE).scan().to_arrow()
    currencies = dict(zip(scanned["event_id"].to_pylist(), scanned[ADDED].to_pylist(), strict=True))
    assert len(currencies) == len(transactions)
    for event in older_events:
        assert currencies[event.record["metadata"]["event_id"]] is None
    for event in newer_events:
        assert currencies[event.record["metadata"]["event_id"]] == event.record[ADDED]
