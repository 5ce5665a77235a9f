"""Putting events on a Kinesis stream without ever dropping one.

* Events are Avro single-object encoded (:mod:`pipelines.contract.codec`).
* With aggregation (the default) they are packed into KPL aggregated records
  **per shard**: each event's partition key is hashed (MD5, as Kinesis does)
  onto the stream's open shards, and an aggregate carries the shard's starting
  hash key as its ``ExplicitHashKey``, so every event lands on the shard its
  key maps to and a key's events stay on one shard, in order. An aggregate has
  **one partition key** (its first event's) for every user record in it: which
  key routed an event is the ``ExplicitHashKey``'s business, and what a consumer
  orders by is the event's own ``metadata.aggregate_id``, so a key per user record
  would only cost bytes (about 6 an event: 4,871 typical events per 1 MiB
  aggregate with them, 5,130 without). See ``docs/adr/0003-producer-ordering-lanes.md``.
* ``PutRecords`` requests hold at most 500 entries and 5 MiB; an aggregate at
  most 1 MiB (data plus partition key).
* A partial failure is retried, entry by entry, with bounded exponential
  backoff and full jitter. Order per key survives retries because a request
  never holds two entries of one ordering lane (one shard when aggregating,
  one partition key otherwise): an entry that failed is re-sent before anything
  queued behind it.
* After the retry budget, :class:`~pipelines.errors.DeliveryError` is raised
  with every event that did not land (and those that did).
"""

from __future__ import annotations

import bisect
import hashlib
import logging
import random
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from pipelines.adapters.errors import Failure, classify, error_code
from pipelines.adapters.retry import RetryPolicy
from pipelines.contract.codec import Codec, default_codec
from pipelines.errors import DeliveryError, EventValidationError
from pipelines.stream.aggregation import MAX_AGGREGATE_BYTES, Aggregator

logger = logging.getLogger(__name__)

MAX_ENTRIES_PER_REQUEST = 500
MAX_BYTES_PER_REQUEST = 5 * 1024 * 1024
MAX_BYTES_PER_RECORD = 1024 * 1024
# A producer waits longer than a consumer's write: it holds the only copy of its events.
PRODUCER_RETRY = RetryPolicy(max_attempts=10, base_delay=0.05, max_delay=2.0)


@dataclass(frozen=True, slots=True)
class Placement:
    """Where one event landed."""

    event_id: str
    partition_key: str
    shard_id: str
    sequence_number: str
    sub_sequence_number: int | None  # position inside its aggregate, None if plain


@dataclass(frozen=True, slots=True)
class Shard:
    shard_id: str
    starting_hash_key: int
    ending_hash_key: int


class ShardMap:
    """The open shards of a stream by hash-key range."""

    def __init__(self, shards: Sequence[Shard]) -> None:
        if not shards:
            raise ValueError("the stream has no open shards")
        self.shards = sorted(shards, key=lambda s: s.starting_hash_key)
        self._starts = [s.starting_hash_key for s in self.shards]

    @classmethod
    def of_stream(cls, client: Any, stream: Mapping[str, str]) -> ShardMap:
        shards: list[Shard] = []
        kwargs: dict[str, Any] = dict(stream)
        while True:
            page = client.list_shards(**kwargs)
            for s in page["Shards"]:
                if "EndingSequenceNumber" in s.get("SequenceNumberRange", {}):
                    continue  # closed by a reshard
                r = s["HashKeyRange"]
                shards.append(
                    Shard(s["ShardId"], int(r["StartingHashKey"]), int(r["EndingHashKey"]))
                )
            token = page.get("NextToken")
            if not token:
                return cls(shards)
            kwargs = {"NextToken": token}

    def shard_for(self, partition_key: str) -> Shard:
        hash_key = int.from_bytes(hashlib.md5(partition_key.encode()).digest(), "big")
        return self.shards[bisect.bisect_right(self._starts, hash_key) - 1]


@dataclass(slots=True)
class _Entry:
    """One PutRecords entry: a plain event or an aggregate of events."""

    data: bytes
    partition_key: str
    explicit_hash_key: str | None
    events: list[int]  # indices into the caller's events
    lane: str  # the ordering lane: the shard when aggregating, else the partition key
    attempts: int = 0

    @property
    def request_bytes(self) -> int:
        return len(self.data) + len(self.partition_key.encode())

    def as_request(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"Data": self.data, "PartitionKey": self.partition_key}
        if self.explicit_hash_key is not None:
            entry["ExplicitHashKey"] = self.explicit_hash_key
        return entry


@dataclass
class _Lanes:
    """FIFO queues of entries; at most one entry per lane is in flight."""

    queues: dict[str, deque[_Entry]] = field(default_factory=dict)

    def push(self, entry: _Entry) -> None:
        self.queues.setdefault(entry.lane, deque()).append(entry)

    def next_request(self) -> list[_Entry]:
        request: list[_Entry] = []
        size = 0
        for queue in self.queues.values():
            head = queue[0]
            if len(request) == MAX_ENTRIES_PER_REQUEST:
                break
            if request and size + head.request_bytes > MAX_BYTES_PER_REQUEST:
                continue
            request.append(head)
            size += head.request_bytes
        return request

    def landed(self, entry: _Entry) -> None:
        queue = self.queues[entry.lane]
        queue.popleft()
        if not queue:
            del self.queues[entry.lane]

    def pending(self) -> list[_Entry]:
        return [e for q in self.queues.values() for e in q]

    def __bool__(self) -> bool:
        return bool(self.queues)


def _sealed(aggregator: Aggregator, shard: Shard, members: list[int], keys: list[str]) -> _Entry:
    """An aggregate, routed to its shard by the shard's starting hash key."""
    hash_key = str(shard.starting_hash_key)
    return _Entry(aggregator.seal(), keys[members[0]], hash_key, members, shard.shard_id)


class Producer:
    """Puts events on one Kinesis stream; see the module docstring."""

    def __init__(
        self,
        client: Any,
        stream_name: str | None = None,
        *,
        stream_arn: str | None = None,
        aggregate: bool = True,
        retry: RetryPolicy | None = None,
        codec: Codec | None = None,
        max_aggregate_bytes: int = MAX_AGGREGATE_BYTES,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        if not (stream_name or stream_arn):
            raise ValueError("give the stream's name or ARN")
        self.client = client
        self._stream: dict[str, str] = (
            {"StreamARN": stream_arn} if stream_arn else {"StreamName": str(stream_name)}
        )
        self.aggregate = aggregate
        self.retry = retry or PRODUCER_RETRY
        self.codec = codec or default_codec()
        self.max_aggregate_bytes = max_aggregate_bytes
        self._sleep = sleep
        self._rng = rng or random.Random()
        self.stats = {"requests": 0, "entries_sent": 0, "entries_failed": 0, "records": 0}

    def put_events(self, events: Iterable[Mapping[str, Any]]) -> list[Placement]:
        """Put every event; return where each landed, in the order given."""
        events = list(events)
        if not events:
            return []
        encoded = [self.codec.encode(e) for e in events]
        keys = [e["metadata"]["aggregate_id"] for e in events]
        for i, data in enumerate(encoded):
            if len(data) + len(keys[i].encode()) > MAX_BYTES_PER_RECORD:
                raise EventValidationError(
                    f"event {events[i]['metadata']['event_id']} is {len(data)} bytes encoded, "
                    "over Kinesis's 1 MiB record limit"
                )
        lanes = (
            self._aggregate_lanes(encoded, keys)
            if self.aggregate
            else self._plain_lanes(encoded, keys)
        )
        placements: list[Placement | None] = [None] * len(events)
        self._send(lanes, events, keys, placements)
        return [p for p in placements if p is not None]

    # -- building entries -------------------------------------------------

    def _plain_lanes(self, encoded: list[bytes], keys: list[str]) -> _Lanes:
        lanes = _Lanes()
        for i, data in enumerate(encoded):
            lanes.push(_Entry(data, keys[i], None, [i], keys[i]))
        return lanes

    def _aggregate_lanes(self, encoded: list[bytes], keys: list[str]) -> _Lanes:
        shard_map = ShardMap.of_stream(self.client, self._stream)
        by_shard: dict[str, tuple[Shard, list[int]]] = {}
        for i, key in enumerate(keys):
            shard = shard_map.shard_for(key)
            by_shard.setdefault(shard.shard_id, (shard, []))[1].append(i)
        lanes = _Lanes()
        for shard, indices in by_shard.values():
            aggregator = Aggregator(self.max_aggregate_bytes)
            members: list[int] = []
            key = keys[indices[0]]  # the aggregate's one partition key: its first event's
            for i in indices:
                if not aggregator.add(key, encoded[i]):
                    lanes.push(_sealed(aggregator, shard, members, keys))
                    aggregator = Aggregator(self.max_aggregate_bytes)
                    members = []
                    key = keys[i]
                    aggregator.add(key, encoded[i])
                members.append(i)
            lanes.push(_sealed(aggregator, shard, members, keys))
        return lanes

    # -- sending ----------------------------------------------------------

    def _send(
        self,
        lanes: _Lanes,
        events: list[Mapping[str, Any]],
        keys: list[str],
        placements: list[Placement | None],
    ) -> None:
        failed_rounds = 0
        while lanes:
            request = lanes.next_request()
            results = self._put_records(request, events, placements, lanes)
            any_failed = False
            exhausted: str | None = None
            for entry, result in zip(request, results, strict=True):
                if result is not None and "SequenceNumber" in result:
                    self._place(entry, result, events, keys, placements)
                    lanes.landed(entry)
                    continue
                any_failed = True
                entry.attempts += 1
                self.stats["entries_failed"] += 1
                if entry.attempts >= self.retry.max_attempts:
                    reason = (result or {}).get("ErrorCode", "request failed")
                    exhausted = f"an entry failed {entry.attempts} times ({reason})"
            if exhausted:  # only after every landed entry of the response is placed
                self._give_up(exhausted, lanes, events, placements)
            if any_failed:
                failed_rounds += 1
                self._sleep(self.retry.delay(failed_rounds, self._rng.random))
            else:
                failed_rounds = 0

    def _put_records(
        self,
        request: list[_Entry],
        events: list[Mapping[str, Any]],
        placements: list[Placement | None],
        lanes: _Lanes,
    ) -> list[dict[str, Any] | None]:
        self.stats["requests"] += 1
        self.stats["entries_sent"] += len(request)
        try:
            response = self.client.put_records(
                Records=[e.as_request() for e in request], **self._stream
            )
        except ClientError as exc:
            code = error_code(exc)
            if classify(exc) is not Failure.TRANSIENT:
                self._give_up(f"PutRecords failed: {code}", lanes, events, placements, exc)
            logger.warning("PutRecords throttled as a whole (%s); retrying", code)
            return [None] * len(request)
        except BotoCoreError as exc:  # connection errors, timeouts
            logger.warning("PutRecords did not complete (%s); retrying", exc)
            return [None] * len(request)
        records: list[dict[str, Any]] = response["Records"]
        return list(records)

    def _place(
        self,
        entry: _Entry,
        result: Mapping[str, Any],
        events: list[Mapping[str, Any]],
        keys: list[str],
        placements: list[Placement | None],
    ) -> None:
        self.stats["records"] += 1
        aggregated = entry.explicit_hash_key is not None
        for sub, i in enumerate(entry.events):
            placements[i] = Placement(
                str(events[i]["metadata"]["event_id"]),
                keys[i],
                result["ShardId"],
                result["SequenceNumber"],
                sub if aggregated else None,
            )

    def _give_up(
        self,
        why: str,
        lanes: _Lanes,
        events: list[Mapping[str, Any]],
        placements: list[Placement | None],
        cause: BaseException | None = None,
    ) -> None:
        undelivered_idx = sorted(i for e in lanes.pending() for i in e.events)
        undelivered = [events[i] for i in undelivered_idx]
        delivered = [p for p in placements if p is not None]
        error = DeliveryError(
            f"{why}; {len(undelivered)} event(s) did not land, {len(delivered)} did",
            undelivered,
            delivered,
        )
        raise error from cause


def put_events(
    client: Any, stream_name: str, events: Iterable[Mapping[str, Any]], **options: Any
) -> list[Placement]:
    """Put ``events`` on ``stream_name`` (see :class:`Producer` for options)."""
    return Producer(client, stream_name, **options).put_events(events)
