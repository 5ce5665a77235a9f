"""A retry of an old batch after its snapshots expired still commits nothing twice.

The watermark is a table property, not a snapshot summary, so expiring every snapshot the
batch's commits made leaves it in place.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from pipelines.consumers.lake import watermark_of
from tests.kinesis_events import SHARD_ID
from tests.lake import local_lake
from tests.unit.test_lake_writer import local_writer, mixed_batch, read_lake, sample_events


def test_a_retry_of_an_old_batch_after_snapshot_expiry_commits_nothing(tmp_path: Path) -> None:
    events = sample_events(120)
    writer, _ = local_writer(tmp_path)
    old = mixed_batch(events[:60], first=1)
    assert writer.process_batch(old).errors == [None] * len(old)
    new = mixed_batch(events[60:], first=100)
    assert writer.process_batch(new).errors == [None] * len(new)

    lake = local_lake(tmp_path)
    for event_type in lake.tables.event_types:
        table = lake.table(event_type, refresh=True)
        current = table.current_snapshot()
        assert current is not None
        older = [s.snapshot_id for s in table.snapshots() if s.snapshot_id != current.snapshot_id]
        if older:
            table.maintenance.expire_snapshots().by_ids(older).commit()
        table = lake.table(event_type, refresh=True)
        assert [s.snapshot_id for s in table.snapshots()] == [current.snapshot_id]
        assert watermark_of(table, SHARD_ID) > 0  # the property outlived the snapshots

    writer, _ = local_writer(tmp_path)  # a fresh writer, as after a cold start
    assert writer.process_batch(old).errors == [None] * len(old)

    by_type = Counter(e["metadata"]["event_type"] for e in events)
    for event_type, produced in by_type.items():
        ids = read_lake(tmp_path, event_type).column("event_id").to_pylist()
        assert len(ids) == len(set(ids)) == produced, event_type
