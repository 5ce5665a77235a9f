"""Decoded events to Parquet files, one per event type and event date.

Pure (no I/O): :meth:`LakeTables.files` turns a batch's events into
:class:`LakeFile` objects - the object key and the Parquet bytes. The key is
``<table>/dt=<yyyy-MM-dd>/<batch stem>.parquet``: the Glue table's location,
the Hive-style partition of the event date (UTC, from ``occurred_at``), and a
stem made of the batch's shard and sequence range, so the same batch always
yields the same keys and a re-delivered batch overwrites its own objects.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipelines.consumers.lake.schema import METADATA_FIELD, lake_schema, table_name
from pipelines.contract.codec import DecodedEvent
from pipelines.contract.schemas import SchemaRegistry, default_registry

PARTITION_COLUMN = "dt"
EVENT_TIME_COLUMN = "occurred_at"


@dataclass(frozen=True, slots=True)
class LakeFile:
    """One Parquet object of the lake: where it goes, its bytes, and how many events."""

    key: str
    data: bytes
    events: int
    event_type: str


@dataclass(frozen=True, slots=True)
class _Layout:
    """How to read one event type's columns out of a decoded record."""

    table: str
    schema: pa.Schema
    metadata: Any  # itemgetter over the metadata record (a tuple of values)
    body: Any  # itemgetter over the body (a tuple of values)


def _getter(names: list[str]) -> Any:
    if len(names) == 1:
        only = itemgetter(names[0])
        return lambda record: (only(record),)
    return itemgetter(*names) if names else lambda record: ()


class LakeTables:
    """Turns decoded events into the lake's Parquet files."""

    def __init__(
        self, registry: SchemaRegistry | None = None, *, compression: str = "zstd"
    ) -> None:
        registry = registry or default_registry()
        self.compression = compression
        self._layouts: dict[str, _Layout] = {}
        for event_type, version in registry.current.items():
            resolved = version.resolved
            body = [f["name"] for f in resolved["fields"] if f["name"] != METADATA_FIELD]
            (metadata_schema,) = [
                f["type"] for f in resolved["fields"] if f["name"] == METADATA_FIELD
            ]
            metadata = [f["name"] for f in metadata_schema["fields"]]
            self._layouts[event_type] = _Layout(
                table_name(event_type), lake_schema(resolved), _getter(metadata), _getter(body)
            )

    def schema(self, event_type: str) -> pa.Schema:
        return self._layouts[event_type].schema

    def table(self, event_type: str, records: Iterable[dict[str, Any]]) -> pa.Table:
        """One event type's records as an Arrow table with its lake schema."""
        layout = self._layouts[event_type]
        meta, body = layout.metadata, layout.body
        rows = [meta(record[METADATA_FIELD]) + body(record) for record in records]
        schema = layout.schema
        if not rows:
            return schema.empty_table()
        columns = list(zip(*rows, strict=True))
        arrays = [pa.array(values, type=f.type) for values, f in zip(columns, schema, strict=True)]
        return pa.Table.from_arrays(arrays, schema=schema)

    def files(self, events: Iterable[DecodedEvent], stem: str) -> list[LakeFile]:
        """The Parquet files of a batch's events, one per event type and event date."""
        by_type: dict[str, list[dict[str, Any]]] = {}
        for event in events:
            by_type.setdefault(event.event_type, []).append(event.record)
        out: list[LakeFile] = []
        for event_type in sorted(by_type):
            table = self.table(event_type, by_type[event_type])
            prefix = self._layouts[event_type].table
            for day, part in _split_by_date(table):
                key = f"{prefix}/{PARTITION_COLUMN}={day}/{stem}.parquet"
                out.append(LakeFile(key, self.to_parquet(part), part.num_rows, event_type))
        return out

    def to_parquet(self, table: pa.Table) -> bytes:
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, compression=self.compression)
        return sink.getvalue().to_pybytes()


def _split_by_date(table: pa.Table) -> list[tuple[str, pa.Table]]:
    """The table's rows by UTC event date (``yyyy-MM-dd``), in date order, row order kept."""
    dates = pc.cast(table[EVENT_TIME_COLUMN], pa.date32())
    days = pc.unique(dates)
    if len(days) == 1:
        return [(days[0].as_py().isoformat(), table)]
    parts = []
    for day in sorted(days.to_pylist()):
        parts.append((day.isoformat(), table.filter(pc.equal(dates, pa.scalar(day, pa.date32())))))
    return parts
