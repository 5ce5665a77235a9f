"""Where each shard's consumer got to, kept on disk so a restarted runtime resumes there.

One JSON file per workspace::

    {"version": 1,
     "mappings": {"<mapping uuid>": {"source": "<stream arn>", "function": "<name>",
                                     "shards": {"shardId-000000000000": "<sequence number>"}}}}

A shard's entry is the sequence number of the last record whose outcome is settled (processed,
or handed to the on-failure destination); reading resumes after it. Every write replaces the
file atomically (write a sibling, fsync, rename), so a crash leaves the old or the new
checkpoint, never a torn one.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from pipelines_local.runtime.errors import CheckpointError

_VERSION = 1


class CheckpointStore:
    """Checkpoints of every mapping of one workspace, in one JSON file."""

    def __init__(self, path: str | os.PathLike[str] | None) -> None:
        self.path = Path(path) if path is not None else None
        self._data: dict[str, Any] = {"version": _VERSION, "mappings": {}}
        if self.path is not None and self.path.is_file():
            self._data = self._read(self.path)

    @classmethod
    def in_memory(cls) -> CheckpointStore:
        """A store that is never written to disk (for a one-off run)."""
        return cls(None)

    def get(self, mapping_uuid: str, shard_id: str) -> str | None:
        """The last settled sequence number of a shard, or None if it never had one."""
        shards = self._mapping(mapping_uuid).get("shards", {})
        value = shards.get(shard_id)
        return str(value) if value is not None else None

    def put(
        self,
        mapping_uuid: str,
        shard_id: str,
        sequence_number: str,
        *,
        source: str = "",
        function: str = "",
    ) -> None:
        """Record ``sequence_number`` as settled for the shard and write the file."""
        entry = self._data["mappings"].setdefault(
            mapping_uuid, {"source": source, "function": function, "shards": {}}
        )
        current = entry["shards"].get(shard_id)
        if current is not None and int(current) > int(sequence_number):
            raise CheckpointError(
                f"checkpoint of {shard_id} would move back from {current} to {sequence_number}"
            )
        entry["shards"][shard_id] = sequence_number
        self._write()

    def snapshot(self) -> dict[str, Any]:
        """A copy of everything stored."""
        return json.loads(json.dumps(self._data))

    def _mapping(self, mapping_uuid: str) -> dict[str, Any]:
        mapping: dict[str, Any] = self._data["mappings"].get(mapping_uuid, {})
        return mapping

    @staticmethod
    def _read(path: Path) -> dict[str, Any]:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise CheckpointError(f"cannot read checkpoints {path}: {exc}") from exc
        if not isinstance(data, dict) or data.get("version") != _VERSION:
            raise CheckpointError(f"{path} is not a version {_VERSION} checkpoint file")
        data.setdefault("mappings", {})
        return data

    def _write(self) -> None:
        if self.path is None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".checkpoints-", dir=self.path.parent)
            try:
                with os.fdopen(fd, "w") as handle:
                    json.dump(self._data, handle, indent=2, sort_keys=True)
                    handle.write("\n")
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(tmp, self.path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise CheckpointError(f"cannot write checkpoints {self.path}: {exc}") from exc
