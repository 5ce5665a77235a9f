"""Checkpoints: written atomically after each outcome, read back by a new runtime."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines_local.runtime import CheckpointError, CheckpointStore


def test_checkpoints_survive_a_new_store(tmp_path: Path) -> None:
    path = tmp_path / "runtime" / "local" / "checkpoints.json"
    store = CheckpointStore(path)
    store.put("uuid-1", "shardId-000000000000", "41", source="arn:stream", function="fn")
    store.put("uuid-1", "shardId-000000000000", "52")

    reopened = CheckpointStore(path)

    assert reopened.get("uuid-1", "shardId-000000000000") == "52"
    assert reopened.get("uuid-1", "shardId-000000000001") is None
    assert reopened.get("uuid-2", "shardId-000000000000") is None
    assert list(path.parent.iterdir()) == [path]  # no temporary file left behind


def test_sequence_numbers_compare_as_integers(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path / "c.json")
    store.put("u", "s", "9")
    store.put("u", "s", "10")  # "10" < "9" as text, not as a sequence number
    with pytest.raises(CheckpointError):
        store.put("u", "s", "8")


def test_unreadable_file_is_an_error_not_a_fresh_start(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text("{not json")
    with pytest.raises(CheckpointError):
        CheckpointStore(path)


def test_in_memory_store_writes_nothing(tmp_path: Path) -> None:
    store = CheckpointStore.in_memory()
    store.put("u", "s", "1")
    assert store.get("u", "s") == "1"
    assert store.path is None
