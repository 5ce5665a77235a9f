"""Decoded events to Parquet files, one per event type and event date.

Pure (no I/O): :meth:`LakeTables.build` turns a batch's events into
:class:`LakeFile` objects - the object key and the Parquet bytes - and the events
the lake cannot hold (:class:`RejectedRow`). The key is
``<table>/dt=<yyyy-MM-dd>/<batch stem>.parquet``: the Glue table's location,
the Hive-style partition of the event date (UTC, from ``occurred_at``), and a
stem made of the batch's shard and sequence range, so the same batch always
yields the same keys and a re-delivered batch overwrites its own objects.

A row the lake cannot hold is one event's problem, never the batch's: an event dated
before the lake's first partition (:data:`~pipelines.event_time.EVENT_TIME_FLOOR`, where
the Glue partition projection starts) would sit where no query looks, and a value that
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
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipelines.consumers.lake.schema import METADATA_FIELD, lake_schema, table_name
from pipelines.contract.codec import DecodedEvent
from pipelines.contract.schemas import SchemaRegistry, default_registry
from pipelines.event_time import EVENT_TIME_FLOOR, EVENT_TIME_FLOOR_DATE

PARTITION_COLUMN = "dt"
EVENT_TIME_COLUMN = "occurred_at"

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
class LakeBuild:
    """A batch's Parquet files, and the events left out of them."""

    files: list[LakeFile] = field(default_factory=list)
    rejected: list[RejectedRow] = field(default_factory=list)


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
        """The Parquet files of a batch's events, one per event type and event date.

        Every event must fit: a value the lake refuses raises (:meth:`build` sets it aside).
        """
        by_type: dict[str, list[dict[str, Any]]] = {}
        for event in events:
            by_type.setdefault(event.event_type, []).append(event.record)
        out: list[LakeFile] = []
        for event_type in sorted(by_type):
            out.extend(
                self._files_of(event_type, self.table(event_type, by_type[event_type]), stem)
            )
        return out

    def build(self, events: Sequence[DecodedEvent], stem: str) -> LakeBuild:
        """The Parquet files of a batch's events, and the events the lake cannot hold.

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
        out: list[LakeFile] = []
        for event_type in sorted(by_type):
            out.extend(self._isolating(event_type, events, by_type[event_type], stem, rejected))
        rejected.sort()
        return LakeBuild(out, rejected)

    def _isolating(
        self,
        event_type: str,
        events: Sequence[DecodedEvent],
        positions: list[int],
        stem: str,
        rejected: list[RejectedRow],
    ) -> list[LakeFile]:
        """The files of one event type's events; those that cannot be converted left out.

        The whole table is tried first, the way every batch goes but for a bad row. When it
        fails, the events that Arrow refuses one at a time are set aside (cheap), and, only
        if the rest still fail, those Parquet refuses one at a time.
        """

        def table_of(subset: list[int]) -> pa.Table:
            return self.table(event_type, [events[i].record for i in subset])

        def files_of(subset: list[int]) -> list[LakeFile]:
            return self._files_of(event_type, table_of(subset), stem) if subset else []

        for alone in (table_of, files_of):
            try:
                return files_of(positions)
            except CONVERSION_ERRORS as exc:
                _raise_if_memory(exc)
            kept = []
            for position in positions:
                try:
                    alone([position])
                except CONVERSION_ERRORS as exc:
                    _raise_if_memory(exc)
                    rejected.append(RejectedRow(position, self._reason(event_type, exc)))
                else:
                    kept.append(position)
            positions = kept
        return files_of(positions)  # still failing: no single event explains it, so raise

    def _files_of(self, event_type: str, table: pa.Table, stem: str) -> list[LakeFile]:
        prefix = self._layouts[event_type].table
        out = []
        for day, part in _split_by_date(table):
            key = f"{prefix}/{PARTITION_COLUMN}={day}/{stem}.parquet"
            out.append(LakeFile(key, self.to_parquet(part), part.num_rows, event_type))
        return out

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
