"""Object keys named after a batch's place on the stream: ``<shard>-<first>-<last>``.

The lake writer and the archiver name every object they write after the batch's shard and
its first and last sequence numbers, so a re-delivered batch (the same range: their mappings
never bisect) writes the same keys and overwrites its own objects. :func:`parse_stem` reads a
stem back, which is how the archive objects covering a range of the stream are found.
"""

from __future__ import annotations

from typing import NamedTuple

from pipelines.consumers.batch import Batch
from pipelines.stream.records import UNKNOWN_SHARD


class StreamRange(NamedTuple):
    """A shard and an inclusive range of its sequence numbers."""

    shard_id: str
    first: str
    last: str

    def overlaps(self, other: StreamRange) -> bool:
        """Whether the two ranges share a sequence number (on the same shard)."""
        if self.shard_id != other.shard_id:
            return False
        return int(self.first) <= int(other.last) and int(other.first) <= int(self.last)

    def holds(self, sequence_number: str) -> bool:
        return int(self.first) <= int(sequence_number) <= int(self.last)


def batch_stem(batch: Batch) -> str:
    """``<shard>-<first sequence>-<last sequence>`` of a batch: the stem of its object keys."""
    first, last = batch.records[0], batch.records[-1]
    shard = (first.decoded.shard_id if first.decoded else None) or UNKNOWN_SHARD
    return f"{shard}-{first.sequence_number}-{last.sequence_number}"


def parse_stem(stem: str) -> StreamRange | None:
    """The range a stem names (``shardId-000000000001-17-42``), or None if it names none.

    Shard ids hold hyphens, sequence numbers only digits: the last two fields are the range.
    """
    parts = stem.rsplit("-", 2)
    if len(parts) != 3 or not parts[0] or not (parts[1].isdigit() and parts[2].isdigit()):
        return None
    return StreamRange(*parts)
