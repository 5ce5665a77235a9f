"""The lake's Apache Iceberg tables in the Glue catalog, and commits that hold each event once.

One table per event type (``<database>.transaction_recorded``), at
``s3://<lake bucket>/<table>``: the event metadata flattened into columns, then the body,
then ``dt``, the event's UTC date as ``yyyy-MM-dd``. The table is partitioned by identity on
``dt``: a precomputed column, so writing needs no partition transform (and no
``pyiceberg-core``), and Athena users filter on ``dt`` exactly as they did on the Hive lake.
Parquet is zstd-compressed. Column ids are Iceberg's: assigned when a table is created, kept
by name as schemas evolve; a field an Avro schema gains becomes a new optional column
(:meth:`LakeCatalog.table`).

**Once per stream record.** Every commit sets, in the same Iceberg transaction as its append,
the table property ``pipelines.watermark.<shard id>`` to the batch's last sequence number;
a commit first drops what the property says is already in (any sequence number up to it).
A retry of any range (the same, shorter, longer) therefore adds each record once, and the
property, unlike a snapshot summary, survives snapshot expiry and is read in O(1). Each
commit sets its own shard's property only: copying other shards' forward would let a
re-based retry roll theirs back.

**Once per event.** A copy of an ``event_id`` already in the table (a producer's retry after
a lost response, a replay onto the stream: the same event at another sequence number) is
dropped too: the commit looks the batch's ids up in the partitions (``dt``) the batch
touches and appends only the new ones. The lookup and the append are one optimistic
transaction: pyiceberg's own retries are off (``commit.retry.num-retries`` = 0) so that a
commit that loses a race with another shard's (Glue rejects the stale ``VersionId``, or
the main branch moved) is redone here from a fresh table: watermark and lookup again, then
append. A reader therefore never sees a duplicate, not even for a moment.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from pipelines.consumers.lake.schema import table_name
from pipelines.errors import TransientError

if TYPE_CHECKING:
    from pyiceberg.catalog import Catalog
    from pyiceberg.table import Table

    from pipelines.consumers.lake.parquet import LakeTables

logger = logging.getLogger(__name__)

PARTITION_COLUMN = "dt"
EVENT_TIME_COLUMN = "occurred_at"
EVENT_ID_COLUMN = "event_id"
WATERMARK_PREFIX = "pipelines.watermark."
# Every table the lake creates has these; the writer's retries are its own (module docstring).
# A commit copies the table's metadata several times over, so its cost grows with what the
# metadata lists: at most 20 earlier metadata files are kept in its log (the older ones are
# deleted by the commit that drops them), and compaction expires old snapshots.
TABLE_PROPERTIES: Mapping[str, str] = {
    "format-version": "2",
    "write.parquet.compression-codec": "zstd",
    "commit.retry.num-retries": "0",
    "write.target-file-size-bytes": str(128 * 1024 * 1024),
    "write.metadata.previous-versions-max": "20",
    "write.metadata.delete-after-commit.enabled": "true",
}


def watermark_property(shard_id: str) -> str:
    """The table property holding the highest sequence number of ``shard_id`` committed."""
    return f"{WATERMARK_PREFIX}{shard_id}"


def watermark_of(table: Table, shard_id: str) -> int:
    """The highest sequence number of ``shard_id`` the table holds; -1 before the first."""
    value = table.properties.get(watermark_property(shard_id))
    return int(value) if value else -1


def catalog_properties(
    region: str,
    endpoint_url: str | None = None,
    *,
    access_key: str | None = None,
    secret_key: str | None = None,
) -> dict[str, str]:
    """pyiceberg's Glue catalog over S3 through pyarrow, on AWS or an emulator's endpoint.

    Credentials come from the default chain (the function's role on AWS, the environment
    locally), for Glue through boto3 and for S3 through pyarrow, unless given.
    """
    properties = {
        "type": "glue",
        "glue.region": region,
        "s3.region": region,
        "py-io-impl": "pyiceberg.io.pyarrow.PyArrowFileIO",
    }
    if endpoint_url:
        properties.update({"glue.endpoint": endpoint_url, "s3.endpoint": endpoint_url})
    if access_key and secret_key:
        for service in ("glue", "s3"):
            properties[f"{service}.access-key-id"] = access_key
            properties[f"{service}.secret-access-key"] = secret_key
    return properties


def glue_catalog(
    region: str,
    endpoint_url: str | None = None,
    *,
    access_key: str | None = None,
    secret_key: str | None = None,
) -> Catalog:
    """The Glue catalog the lake's tables live in."""
    from pyiceberg.catalog.glue import GlueCatalog

    properties = catalog_properties(
        region, endpoint_url, access_key=access_key, secret_key=secret_key
    )
    return GlueCatalog("glue", client=None, **properties)


def with_partition(table: pa.Table) -> pa.Table:
    """``table`` with its ``dt`` column: the UTC date of ``occurred_at``, ``yyyy-MM-dd``."""
    days = pc.cast(pc.cast(table[EVENT_TIME_COLUMN], pa.date32()), pa.string())
    return table.append_column(pa.field(PARTITION_COLUMN, pa.string(), nullable=False), days)


@dataclass(frozen=True, slots=True)
class Commit:
    """What one commit did to one table: rows added, and what it left out and why."""

    table: str
    appended: int
    already_committed: int = 0
    duplicates: int = 0
    attempts: int = 1
    seconds: float = 0.0


class LakeCatalog:
    """The lake's Iceberg tables: created on first use, evolved to the current schemas."""

    def __init__(
        self,
        catalog: Catalog,
        database: str,
        lake_bucket: str,
        tables: LakeTables,
        *,
        warehouse: str | None = None,
        create_missing: bool = True,
    ) -> None:
        self.catalog = catalog
        self.create_missing = create_missing
        self.database = database
        self.lake_bucket = lake_bucket
        self.warehouse = warehouse or f"s3://{lake_bucket}"  # file:// in unit tests
        self.tables = tables
        self._loaded: dict[str, Table] = {}

    def identifier(self, event_type: str) -> tuple[str, str]:
        return (self.database, table_name(event_type))

    def schema(self, event_type: str) -> pa.Schema:
        """The Arrow schema the lake writes for ``event_type``, ``dt`` included."""
        return self.tables.schema(event_type).append(
            pa.field(PARTITION_COLUMN, pa.string(), nullable=False)
        )

    def table(self, event_type: str, *, refresh: bool = True) -> Table:
        """The event type's table, created if missing, with every current column.

        Creation is idempotent (two writers racing both end with the one table), and the
        partition spec is part of it, so a table is never seen unpartitioned.

        With ``create_missing`` false (a reader's catalog) nothing is created or evolved: a
        missing table raises pyiceberg's ``NoSuchTableError``.
        """
        table = self._loaded.get(event_type)
        if table is None and not self.create_missing:
            table = self.catalog.load_table(self.identifier(event_type))
        elif table is None:
            table = self._create_if_missing(event_type)
            table = self._evolve(event_type, table)
        elif refresh:
            table = table.refresh()
        self._loaded[event_type] = table
        return table

    def remember(self, event_type: str, table: Table) -> None:
        """Keep the table a commit returned: the next batch starts from it."""
        self._loaded[event_type] = table

    def forget(self, event_type: str) -> None:
        self._loaded.pop(event_type, None)

    def ensure_all(self) -> list[str]:
        """Create (or evolve) every event type's table; their names."""
        return [".".join(self.table(t).name()) for t in sorted(self.tables.event_types)]

    def _create_if_missing(self, event_type: str) -> Table:
        from pyiceberg.exceptions import NoSuchTableError

        identifier = self.identifier(event_type)
        try:
            return self.catalog.load_table(identifier)
        except NoSuchTableError:
            pass
        from pyiceberg.partitioning import PartitionField, PartitionSpec
        from pyiceberg.transforms import IdentityTransform

        schema = _iceberg_schema(self.schema(event_type))
        source = schema.find_field(PARTITION_COLUMN)
        spec = PartitionSpec(
            PartitionField(
                source_id=source.field_id,
                field_id=1000,
                transform=IdentityTransform(),
                name=PARTITION_COLUMN,
            )
        )
        return self.catalog.create_table_if_not_exists(
            identifier,
            schema=schema,
            location=f"{self.warehouse}/{identifier[1]}",
            partition_spec=spec,
            properties={
                **TABLE_PROPERTIES,
                "write.parquet.compression-codec": self.tables.compression,
            },
        )

    def _evolve(self, event_type: str, table: Table) -> Table:
        """Add the columns a newer Avro schema has and the table lacks, as optional columns."""
        have = {f.name for f in table.schema().fields}
        wanted = self.schema(event_type)
        missing = [f for f in wanted if f.name not in have]
        if not missing:
            return table
        added = _iceberg_schema(pa.schema([f.with_nullable(True) for f in missing]))
        with table.update_schema() as update:
            for column in added.fields:
                update.add_column(column.name, column.field_type, doc=column.doc)
        logger.info("lake table %s gained columns %s", table.name(), [f.name for f in missing])
        return table.refresh()


def _iceberg_schema(schema: pa.Schema) -> Any:
    """An Iceberg schema with fresh ids for an Arrow schema (pyiceberg's own conversion)."""
    from pyiceberg.catalog import Catalog

    return Catalog._convert_schema_if_needed(schema)


class IcebergCommitter:
    """Appends a batch's rows to one table once per stream record and once per event."""

    def __init__(
        self,
        catalog: LakeCatalog,
        *,
        max_attempts: int = 12,
        base_delay: float = 0.05,
        max_delay: float = 2.0,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[float, float], float] = random.uniform,
    ) -> None:
        self.catalog = catalog
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.sleep = sleep
        self.jitter = jitter

    def commit(
        self,
        event_type: str,
        rows: pa.Table,
        sequences: Sequence[int],
        shard_id: str,
        last_sequence: int,
    ) -> Commit:
        """Append ``rows`` (with ``dt``) whose ``sequences`` are above the shard's watermark
        and whose ids the table does not hold, and raise the watermark to ``last_sequence``,
        in one transaction; redone from a fresh table when another commit got in first.
        """
        from pyiceberg.exceptions import CommitFailedException

        started = time.perf_counter()
        refresh = True
        for attempt in range(1, self.max_attempts + 1):
            table = self.catalog.table(event_type, refresh=refresh)
            refresh = True
            mark = watermark_of(table, shard_id)
            if mark >= last_sequence:
                return Commit(".".join(table.name()), 0, len(rows), 0, attempt, _since(started))
            pending = rows.filter(pa.array([sequence > mark for sequence in sequences]))
            already = len(rows) - len(pending)
            new = _without_held(table, pending)
            try:
                with table.transaction() as tx:
                    tx.set_properties({watermark_property(shard_id): str(last_sequence)})
                    if len(new):
                        tx.append(new)
            except CommitFailedException as exc:
                self.catalog.forget(event_type)
                delay = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
                logger.info("commit to %s lost a race (attempt %d): %s", table.name(), attempt, exc)
                self.sleep(self.jitter(delay / 2, delay))
                continue
            except Exception:
                self.catalog.forget(event_type)  # the outcome may be unknown: reload next time
                raise
            self.catalog.remember(event_type, table)
            return Commit(
                ".".join(table.name()),
                len(new),
                already,
                len(pending) - len(new),
                attempt,
                _since(started),
            )
        raise TransientError(
            f"commit to {event_type}'s lake table kept losing races: "
            f"{self.max_attempts} attempts in {_since(started):.1f} s"
        )

    def fill(self, event_type: str, rows: pa.Table) -> Commit:
        """Append the ``rows`` (with ``dt``) whose ids their partitions do not hold, leaving
        every watermark as it is: a rebuild from the archive (``pipeline replay --target
        lake``), idempotent with what the table holds; redone from a fresh table on a race.
        """
        from pyiceberg.exceptions import CommitFailedException

        started = time.perf_counter()
        for attempt in range(1, self.max_attempts + 1):
            table = self.catalog.table(event_type, refresh=True)
            new = _without_held(table, rows)
            if not len(new):
                return Commit(".".join(table.name()), 0, 0, len(rows), attempt, _since(started))
            try:
                with table.transaction() as tx:
                    tx.append(new)
            except CommitFailedException as exc:
                self.catalog.forget(event_type)
                delay = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
                logger.info("fill of %s lost a race (attempt %d): %s", table.name(), attempt, exc)
                self.sleep(self.jitter(delay / 2, delay))
                continue
            except Exception:
                self.catalog.forget(event_type)
                raise
            self.catalog.remember(event_type, table)
            return Commit(
                ".".join(table.name()),
                len(new),
                0,
                len(rows) - len(new),
                attempt,
                _since(started),
            )
        raise TransientError(
            f"fill of {event_type}'s lake table kept losing races: "
            f"{self.max_attempts} attempts in {_since(started):.1f} s"
        )


def _without_held(table: Table, rows: pa.Table) -> pa.Table:
    """``rows`` less those whose ``event_id`` the table already holds in their partitions."""
    if not len(rows) or table.current_snapshot() is None:
        return rows
    from pyiceberg import expressions

    And: Any = expressions.And  # pyiceberg's pydantic models confuse type checkers
    In: Any = expressions.In

    days = pc.unique(rows[PARTITION_COLUMN]).to_pylist()
    ids = pc.unique(rows[EVENT_ID_COLUMN]).to_pylist()
    held = (
        table.scan(
            row_filter=And(In(PARTITION_COLUMN, days), In(EVENT_ID_COLUMN, ids)),
            selected_fields=(EVENT_ID_COLUMN,),
        )
        .to_arrow()
        .column(EVENT_ID_COLUMN)
    )
    if not len(held):
        return rows
    return rows.filter(pc.invert(pc.is_in(rows[EVENT_ID_COLUMN], value_set=held)))


def _since(started: float) -> float:
    return time.perf_counter() - started
