"""Object keys named after a place on the stream: ``<shard>-<first sequence number>``.

The archiver names each object it writes after the shard and the sequence number of the
first record in it. A re-delivered batch starts at the same record as the first delivery
(the mapping never bisects), whatever its length, so it writes the same keys and overwrites
its own objects: a longer retry's object holds the shorter one's records and more, a
shorter retry's object holds fewer, and the next batch, which starts after it, writes the
rest under its own key. Each record is therefore in one object, whichever ranges Lambda
delivered. (A key naming the last record too would leave the first delivery's object
behind when the retry's range differs.) :func:`parse_stem` reads a stem back, which is how
the archive objects that can hold a range of the stream are found.
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


def batch_shard(batch: Batch) -> str:
    """The shard a batch came from."""
    first = batch.records[0]
    return (first.decoded.shard_id if first.decoded else None) or UNKNOWN_SHARD


def object_stem(shard_id: str, first_sequence: str) -> str:
    """``<shard>-<first sequence>``: the stem of the key of an object starting there."""
    return f"{shard_id}-{first_sequence}"


class StreamStart(NamedTuple):
    """Where an object's records start: a shard and the first sequence number."""

    shard_id: str
    first: str

    def may_hold(self, wanted: StreamRange) -> bool:
        """Whether the object can hold records of ``wanted`` (it starts at or before its end)."""
        return self.shard_id == wanted.shard_id and int(self.first) <= int(wanted.last)


def parse_stem(stem: str) -> StreamStart | None:
    """Where a stem says its object starts (``shardId-000000000001-17``), or None.

    Shard ids hold hyphens, sequence numbers only digits: the last field is the sequence.
    """
    parts = stem.rsplit("-", 1)
    if len(parts) != 2 or not parts[0] or not parts[1].isdigit():
        return None
    return StreamStart(*parts)
