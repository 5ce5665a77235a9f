"""KPL record aggregation, in the format of ``aws-kinesis-agg``.

An aggregated record is ``MAGIC | protobuf AggregatedRecord | MD5(protobuf)``
(https://github.com/awslabs/amazon-kinesis-producer/blob/master/aggregation-format.md).
The protobuf messages and the magic come from ``aws-kinesis-agg``; size
accounting is done here incrementally (instead of per record through the
library's ``AggRecord``) because it sits on the producer's hot path.

Unlike the library's deaggregator, which passes a record with a bad checksum
through as if it were not aggregated, ``deaggregate`` treats a record that
carries the magic but fails its checksum or protobuf parse as corrupt.
"""

from __future__ import annotations

import hashlib
from typing import NamedTuple

import aws_kinesis_agg.aggregator  # noqa: F401  (puts the protobuf modules on the path)
from aws_kinesis_agg import MAGIC, messages_pb2
from google.protobuf.message import DecodeError

from pipelines.errors import CorruptRecordError

# A Kinesis record's data plus partition key may be at most 1 MiB; partition
# keys are at most 256 bytes, so an aggregate's data stays under this.
MAX_AGGREGATE_BYTES = 1024 * 1024 - 256
_DIGEST_SIZE = 16
_OVERHEAD = len(MAGIC) + _DIGEST_SIZE


def _varint_size(value: int) -> int:
    size = 1
    while value >= 0x80:
        value >>= 7
        size += 1
    return size


class Aggregator:
    """Packs user records into one aggregated record, up to ``max_bytes``."""

    __slots__ = ("_keys", "_message", "_records", "_size", "_table", "max_bytes")

    def __init__(self, max_bytes: int = MAX_AGGREGATE_BYTES) -> None:
        self.max_bytes = max_bytes
        self._message = messages_pb2.AggregatedRecord()
        self._records = self._message.records
        self._table = self._message.partition_key_table
        self._keys: dict[str, int] = {}
        self._size = _OVERHEAD

    def __len__(self) -> int:
        return len(self._records)

    @property
    def size(self) -> int:
        """Bytes the sealed record would have now."""
        return self._size

    def record_size(self, partition_key: str, data: bytes) -> int:
        """Bytes ``data`` would add to this aggregate."""
        index = self._keys.get(partition_key)
        added = 0
        if index is None:
            key_len = len(partition_key.encode())
            added = 1 + _varint_size(key_len) + key_len
            index = len(self._keys)
        inner = 1 + _varint_size(index) + 1 + _varint_size(len(data)) + len(data)
        return added + 1 + _varint_size(inner) + inner

    def add(self, partition_key: str, data: bytes) -> bool:
        """Add a user record; False (and nothing added) when it does not fit."""
        grows_by = self.record_size(partition_key, data)
        if self._size + grows_by > self.max_bytes:
            if not self._records:
                raise ValueError(
                    f"a {len(data)}-byte record cannot fit in a {self.max_bytes}-byte aggregate"
                )
            return False
        index = self._keys.get(partition_key)
        if index is None:
            index = self._keys[partition_key] = len(self._keys)
            self._table.append(partition_key)
        self._records.add(partition_key_index=index, data=data)
        self._size += grows_by
        return True

    def seal(self) -> bytes:
        """The aggregated record's bytes."""
        body = self._message.SerializeToString()
        return MAGIC + body + hashlib.md5(body).digest()


class SubRecord(NamedTuple):
    """One user record inside a Kinesis record."""

    partition_key: str
    data: bytes
    sub_sequence_number: int
    aggregated: bool


def is_aggregated(data: bytes) -> bool:
    return data[: len(MAGIC)] == MAGIC


def user_record_count(data: bytes) -> int:
    """How many user records a Kinesis record's data holds (1 if it is not aggregated, or
    does not parse: the consumer quarantines it as one record)."""
    if not is_aggregated(data) or len(data) < _OVERHEAD:
        return 1
    message = messages_pb2.AggregatedRecord()
    try:
        message.ParseFromString(data[len(MAGIC) : -_DIGEST_SIZE])
    except DecodeError:
        return 1
    return max(1, len(message.records))


def deaggregate(data: bytes, partition_key: str) -> list[SubRecord]:
    """The user records in a Kinesis record's data, checksum verified.

    A record without the magic prefix is a plain record: one user record with
    the Kinesis record's partition key and sub-sequence number 0.
    """
    if not is_aggregated(data):
        return [SubRecord(partition_key, data, 0, False)]
    if len(data) < _OVERHEAD:
        raise CorruptRecordError("aggregated record is shorter than its framing", data)
    body = data[len(MAGIC) : -_DIGEST_SIZE]
    if hashlib.md5(body).digest() != data[-_DIGEST_SIZE:]:
        raise CorruptRecordError("aggregated record fails its MD5 checksum", data)
    message = messages_pb2.AggregatedRecord()
    try:
        message.ParseFromString(body)
    except DecodeError as exc:
        raise CorruptRecordError(f"aggregated record does not parse: {exc}", data) from exc
    keys = list(message.partition_key_table)
    out = []
    for sub, record in enumerate(message.records):
        try:
            key = keys[record.partition_key_index]
        except IndexError as exc:
            raise CorruptRecordError(
                f"user record {sub} points at partition key {record.partition_key_index}, "
                f"but the table has {len(keys)}",
                data,
            ) from exc
        out.append(SubRecord(key, record.data, sub, True))
    return out
