"""The pure parts of a rebuild (names, the cut, the diff's first difference) and the lake's
fill, which appends only what a table lacks and leaves every watermark alone."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from pipelines.consumers.archive import ArchivedEvent
from pipelines.consumers.lake import IcebergCommitter, watermark_of
from pipelines.stream.records import UserRecord
from pipelines_local.rebuild import (
    _first_difference,
    base_table,
    projector_checkpoints,
    shadow_name,
    variable_of,
    within_cut,
)
from pipelines_local.replay import Selected
from tests.unit.test_lake_compaction import SHARD, TYPE, Writer, local_lake, transactions


def test_a_shadow_is_named_after_the_table_it_shadows_and_never_nests() -> None:
    shadow = shadow_name("pipelines-dev-users", "rp-20261204T120000-abc123")
    assert shadow == "pipelines-dev-users-rp-20261204T120000-abc123"
    assert base_table(shadow) == "pipelines-dev-users"
    assert base_table("pipelines-dev-users") == "pipelines-dev-users"
    # A rebuild of a promoted shadow is named after the Terraform table, as IAM allows.
    again = shadow_name(base_table(shadow), "rp-20261205T000000-def456")
    assert again == "pipelines-dev-users-rp-20261205T000000-def456"
    assert variable_of("user_activities") == "USER_ACTIVITIES_TABLE"


def _selected(shard: str, sequence: str) -> Selected:
    record = UserRecord(shard, sequence, 0, "k", b"", 0.0, False)
    return Selected("key", 0, ArchivedEvent(record, "UserRegistered", "e"), None)  # type: ignore[arg-type]


def test_the_cut_is_the_projectors_checkpoint_per_shard(tmp_path: Path) -> None:
    path = tmp_path / "checkpoints.json"
    mappings = {
        "m1": {"function": "p", "source": "s", "shards": {"shardId-0": "100", "shardId-1": "7"}},
        "m2": {"function": "other", "source": "s", "shards": {"shardId-0": "999"}},
    }
    path.write_text(json.dumps({"version": 1, "mappings": mappings}))

    cut = projector_checkpoints(path, "p")

    assert cut == {"shardId-0": 100, "shardId-1": 7}
    assert within_cut(_selected("shardId-0", "100"), cut)
    assert not within_cut(_selected("shardId-0", "101"), cut)
    assert not within_cut(_selected("shardId-2", "1"), cut)  # the projector read none of it
    assert within_cut(_selected("shardId-2", "1"), None)  # no checkpoints: all archived
    assert projector_checkpoints(tmp_path / "absent.json", "p") is None


def test_the_first_difference_is_the_first_attribute_by_name_that_differs() -> None:
    live = {"id": {"S": "1"}, "b": {"S": "x"}, "c": {"N": "1"}}
    shadow = {"id": {"S": "1"}, "b": {"S": "y"}, "c": {"N": "2"}}
    assert _first_difference(live, shadow) == ("b", {"S": "x"}, {"S": "y"})
    assert _first_difference(live, None) == ("b", {"S": "x"}, None)
    assert _first_difference(live, dict(live)) == (None, None, None)


def test_fill_appends_only_the_events_a_table_lacks_and_keeps_its_watermark(
    tmp_path: Path,
) -> None:
    lake = local_lake(tmp_path)
    events = transactions()
    half = len(events) // 2
    writer = Writer(lake)
    writer.commit(events[:half])
    mark = watermark_of(lake.table(TYPE), SHARD)
    committer = IcebergCommitter(lake, sleep=lambda _: None)

    first = committer.fill(TYPE, lake.tables.rows(TYPE, events))
    again = committer.fill(TYPE, lake.tables.rows(TYPE, events))

    assert (first.appended, first.duplicates) == (len(events) - half, half)
    assert (again.appended, again.duplicates) == (0, len(events))
    table = lake.table(TYPE)
    ids = Counter(table.scan(selected_fields=("event_id",)).to_arrow()["event_id"].to_pylist())
    assert sorted(ids) == sorted(e["metadata"]["event_id"] for e in events)
    assert set(ids.values()) == {1}
    assert watermark_of(table, SHARD) == mark  # the writer's stream position is its own
