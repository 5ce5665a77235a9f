"""Decoded events to the lake's rows: one Arrow table per event type, with its ``dt``.

Pure (no I/O): :meth:`LakeTables.build` turns a batch's events into :class:`LakeRows`, an
Arrow table per event type in the lake schema (:mod:`.schema`) plus ``dt``, the event's UTC
date, which the Iceberg tables are partitioned by (:mod:`.iceberg`), and the events the
lake cannot hold (:class:`RejectedRow`).

A row the lake cannot hold is one event's problem, never the batch's: an event dated
before the lake's first partition (:data:`~pipelines.event_time.EVENT_TIME_FLOOR`, where
the lake's event time floor) would sit where no query looks, and a value that
Arrow or Parquet refuses for its column (a decimal wider than the column, say) fails the
same way on every retry. When a table's conversion fails, each of its events is converted
alone to find the ones that cannot be, and the rest are written.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any, NamedTuple

import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.consumers.lake.iceberg import with_partition
from pipelines.consumers.lake.schema import METADATA_FIELD, lake_schema, table_name
from pipelines.contract.codec import DecodedEvent
from pipelines.contract.schemas import SchemaRegistry, default_registry
from pipelines.event_time import EVENT_TIME_FLOOR, EVENT_TIME_FLOOR_DATE

# What converting values Arrow or Parquet refuse raises: the same values fail every time.
# (ArrowMemoryError is an ArrowException too, but a MemoryError: not the row's fault.)
CONVERSION_ERRORS: tuple[type[Exception], ...] = (
    pa.ArrowException,
    TypeError,
    ValueError,
    OverflowError,
    ArithmeticError,
)


class RejectedRow(NamedTuple):
    """An event the lake cannot hold: its position among the events given, and why."""

    position: int
    reason: str


@dataclass(frozen=True, slots=True)
class LakeRows:
    """One event type's rows of a batch: the events' positions, and the Arrow table (with
    ``dt``) in the same order."""

    event_type: str
    positions: list[int]
    table: pa.Table


@dataclass(frozen=True, slots=True)
class LakeBuild:
    """A batch's rows by event type, and the events left out of them."""

    rows: list[LakeRows] = field(default_factory=list)
    rejected: list[RejectedRow] = field(default_factory=list)


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

    @property
    def event_types(self) -> list[str]:
        return sorted(self._layouts)

    def rows(self, event_type: str, records: Iterable[dict[str, Any]]) -> pa.Table:
        """One event type's records as lake rows: the lake schema, then ``dt``."""
        return with_partition(self.table(event_type, records))

    def build(self, events: Sequence[DecodedEvent]) -> LakeBuild:
        """A batch's rows by event type, and the events the lake cannot hold.

        An error that no single event explains (every event converts alone, not together)
        is raised: nothing is set aside that could have been written.
        """
        rejected: list[RejectedRow] = []
        by_type: dict[str, list[int]] = {}
        for index, event in enumerate(events):
            occurred_at = event.record["metadata"]["occurred_at"]
            if occurred_at < EVENT_TIME_FLOOR:
                rejected.append(
                    RejectedRow(
                        index,
                        f"{event.event_type}.metadata.occurred_at {occurred_at.isoformat()} is "
                        f"before {EVENT_TIME_FLOOR_DATE}, the lake's first partition",
                    )
                )
                continue
            by_type.setdefault(event.event_type, []).append(index)
        out: list[LakeRows] = []
        for event_type in sorted(by_type):
            positions = self._isolate(event_type, events, by_type[event_type], rejected)
            if positions:
                records = [events[i].record for i in positions]
                out.append(LakeRows(event_type, positions, self.rows(event_type, records)))
        rejected.sort()
        return LakeBuild(out, rejected)

    def refusals(self, rows: LakeRows, events: Sequence[DecodedEvent]) -> list[RejectedRow]:
        """The rows Parquet refuses one at a time (Arrow took them): asked only after a
        write of ``rows`` failed converting, so the common case pays nothing for it."""
        out = []
        for position in rows.positions:
            try:
                self.to_parquet(self.rows(rows.event_type, [events[position].record]))
            except CONVERSION_ERRORS as exc:
                _raise_if_memory(exc)
                out.append(RejectedRow(position, self._reason(rows.event_type, exc)))
        return out

    def _isolate(
        self,
        event_type: str,
        events: Sequence[DecodedEvent],
        positions: list[int],
        rejected: list[RejectedRow],
    ) -> list[int]:
        """``positions`` less the events Arrow refuses (each then tried alone, to find them)."""
        try:
            self.table(event_type, [events[i].record for i in positions])
            return positions
        except CONVERSION_ERRORS as exc:
            _raise_if_memory(exc)
        kept = []
        for position in positions:
            try:
                self.table(event_type, [events[position].record])
            except CONVERSION_ERRORS as exc:
                _raise_if_memory(exc)
                rejected.append(RejectedRow(position, self._reason(event_type, exc)))
            else:
                kept.append(position)
        return kept

    def _reason(self, event_type: str, error: BaseException) -> str:
        table = self._layouts[event_type].table
        return f"{event_type} does not fit the lake table {table}: {type(error).__name__}: {error}"

    def to_parquet(self, table: pa.Table) -> bytes:
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, compression=self.compression)
        return sink.getvalue().to_pybytes()


def _raise_if_memory(error: BaseException) -> None:
    """Out of memory is not a row's fault (pyarrow's ArrowMemoryError is an ArrowException)."""
    if isinstance(error, MemoryError):
        raise error
