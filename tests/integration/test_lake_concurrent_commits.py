"""Shards committing to one Iceberg table at once lose nothing, thanks to Glue's VersionId check.

Four shards commit their batches to the same table concurrently through the lake's own
committer, on the emulator: every row lands once, every shard's watermark is its last
sequence number, and the table's snapshots form one unbroken line. (A commit that keeps
losing races gives up and its batch is delivered again, as Lambda would.) Two interleaved commits
show why that depends on the ``glue_table_version_check`` patch: both read the same table
version, and on moto as released the second to point the table at its metadata silently
replaces the first's commit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pyarrow.compute as pc
import pytest

from pipelines.consumers.lake import Commit, IcebergCommitter, LakeCatalog, watermark_of
from pipelines_local.emulator import EmulatorProcess
from tests.lake_shards import (
    EVENT_TYPE,
    ShardBatch,
    commit_concurrently,
    lake_on,
    shard_batches,
    shard_id,
)

pytestmark = pytest.mark.integration

SHARDS = 4
BATCHES = 5
ROWS_PER_BATCH = 5


def _event_ids(batches: dict[str, list[ShardBatch]]) -> set[str]:
    return {i for shard in batches.values() for b in shard for i in b.rows["event_id"].to_pylist()}


def test_four_shards_committing_at_once_lose_nothing(
    emulator: EmulatorProcess, aws_client: Callable[[str], Any]
) -> None:
    catalog = lake_on(emulator, aws_client)
    batches = shard_batches(SHARDS, BATCHES, ROWS_PER_BATCH)
    expected = _event_ids(batches)
    assert len(expected) == SHARDS * BATCHES * ROWS_PER_BATCH

    runs = commit_concurrently(catalog, batches)

    table = catalog().table(EVENT_TYPE)
    ids = table.scan().to_arrow()["event_id"]
    assert len(ids) == pc.count_distinct(ids).as_py() == len(expected)
    assert set(ids.to_pylist()) == expected
    for shard, run in runs.items():
        assert watermark_of(table, shard) == batches[shard][-1].last_sequence
        assert [c.appended for c in run.commits] == [ROWS_PER_BATCH] * BATCHES
    snapshots = table.snapshots()
    assert len(snapshots) == len(table.history()) == SHARDS * BATCHES
    parents = [s.parent_snapshot_id for s in snapshots]
    assert parents == [None, *(s.snapshot_id for s in snapshots[:-1])]
    summary: Any = snapshots[-1].summary
    assert int(summary["total-records"]) == len(expected)


def _interleaved(catalog: Callable[[], LakeCatalog]) -> tuple[LakeCatalog, Commit, Commit]:
    """Shard 0's commit, with shard 1's whole commit run between shard 0 reading the table's
    Glue version and pointing the table at its new metadata; the two commits back."""
    batches = shard_batches(2, 1, ROWS_PER_BATCH)
    first, second = (IcebergCommitter(catalog()) for _ in range(2))
    first.catalog.table(EVENT_TYPE)
    glue: Any = first.catalog.catalog
    update_glue_table = glue._update_glue_table
    seconds: list[Commit] = []

    def commit(committer: IcebergCommitter, shard: str) -> Commit:
        (batch,) = batches[shard]
        return committer.commit(EVENT_TYPE, batch.rows, batch.sequences, shard, batch.last_sequence)

    def update_after_the_other_shard(*args: Any, **kwargs: Any) -> None:
        if not seconds:
            seconds.append(commit(second, shard_id(1)))
        update_glue_table(*args, **kwargs)

    glue._update_glue_table = update_after_the_other_shard
    return catalog(), commit(first, shard_id(0)), seconds[0]


def test_a_commit_that_lost_the_race_is_redone(
    emulator: EmulatorProcess, aws_client: Callable[[str], Any]
) -> None:
    lake, first, second = _interleaved(lake_on(emulator, aws_client))

    table = lake.table(EVENT_TYPE)
    assert (first.attempts, second.attempts) == (2, 1)
    assert len(table.scan().to_arrow()) == 2 * ROWS_PER_BATCH
    assert watermark_of(table, shard_id(0)) == ROWS_PER_BATCH
    assert watermark_of(table, shard_id(1)) == ROWS_PER_BATCH


def test_a_commit_that_lost_the_race_as_released(
    emulator_as_released: EmulatorProcess, moto_as_released: Callable[[str], Any]
) -> None:
    lake, first, second = _interleaved(lake_on(emulator_as_released, moto_as_released))

    table = lake.table(EVENT_TYPE)
    assert (first.attempts, second.attempts) == (1, 1)
    assert first.appended == second.appended == ROWS_PER_BATCH  # both writers think they won
    assert len(table.scan().to_arrow()) == ROWS_PER_BATCH
    assert watermark_of(table, shard_id(0)) == ROWS_PER_BATCH
    assert watermark_of(table, shard_id(1)) == -1
