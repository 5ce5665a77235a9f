"""Replay: re-drive a slice of the archive onto the stream, each event once downstream.

The archive (:mod:`pipelines.consumers.archive`) holds every record that reached the stream,
in Avro files keyed ``<prefix>/dt=YYYY-MM-DD/hour=HH/<shard>-<first sequence>.avro`` by
arrival hour. A replay:

1. **selects** (:class:`Selection`): an arrival-time range (``--since``/``--until``, mapped
   onto the hour partitions so that only their objects are listed and read) or an
   event-time range (the hours from ``since`` to ``until`` plus the lateness allowed, since
   an event arrives after it occurred), event types, aggregate ids, shards. Poison is not
   replayed: it is the quarantine's, and re-driving bytes that are not an event cannot help;
2. **plans** (:func:`plan`): the objects, events, bytes and an estimated duration at the
   pace chosen; this is all that runs without ``--execute`` (as Kafka's offset reset
   previews by default);
3. **re-puts** (:func:`replay_to_stream`) each selected event with ``metadata.replay_id``
   set and everything else as archived (the same ``event_id``, so every consumer applies it
   at most once; replayed events are not archived again and raise no alerts), through the
   producer: per-shard aggregation, partial failures and throttling retried, nothing dropped.

**Order**: objects are read in key order, which per shard is arrival order, and each
object's entries in (sequence, sub-sequence) order; events are put in that order and the
producer keeps the order of a partition key (the aggregate id) within and across its calls.
So the events of one key arrive in their original order. There is no global order across
keys, and none across shards: the stream never had one.

**Pacing** (:class:`Pacer`): ``--rate N`` events/s (a token bucket), or ``--speedup X``
against the original arrival times; whichever is chosen, never more bytes per second than
the stream's open shards take (1 MiB/s each). Throttling is the producer's to back off from.

**State and resume** (:class:`ReplayStore`): a replay has an id (``rp-...``, its
``replay_id``) and a state (``running``, ``completed``, ``cancelled``, ``failed``) in the
workspace's state folder, with a checkpoint of the last object and entry put. ``resume``
starts after the checkpoint; since a replayed event keeps its ``event_id``, anything put
twice around a crash is still applied once, so replaying twice equals replaying once.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from pipelines.consumers.archive import ArchivedEvent, read_archive
from pipelines.contract.codec import Codec, DecodedEvent
from pipelines.errors import PipelineError
from pipelines.stream.producer import Producer
from pipelines_local.cli import UsageError

SHARD_BYTES_PER_SECOND = 1024 * 1024
SHARD_RECORDS_PER_SECOND = 1000
DEFAULT_LATENESS = timedelta(days=1)
ARRIVAL = "arrival"
EVENT = "event"
STATES = ("running", "completed", "cancelled", "failed", "promoted", "discarded")
_HOUR = timedelta(hours=1)
_PUT_CHUNK = 500  # events per producer call: the checkpoint's granularity


class ReplayError(UsageError):
    """A replay cannot be planned or run as asked (a bad range, an unknown replay id)."""


class ReplayCancelled(PipelineError):
    """``pipeline replay cancel`` stopped the replay; ``resume`` continues it."""

    def __init__(self, replay_id: str) -> None:
        super().__init__(
            f"replay {replay_id} was cancelled (resume it with `pipeline replay "
            f"resume {replay_id}`)"
        )


def parse_time(text: str, flag: str) -> datetime:
    """An ISO 8601 date or time (UTC unless it carries an offset), or ``now``."""
    value = text.strip()
    if value.lower() == "now":
        return datetime.now(UTC)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ReplayError(
            f"{flag} {text!r} is not a time: give an ISO 8601 date or time, such as "
            "2026-12-04, 2026-12-04T13:00 or 2026-12-04T13:00:00+01:00 (UTC unless it says), "
            "or now"
        ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


@dataclass(frozen=True)
class Selection:
    """Which archived events a replay re-drives."""

    since: datetime | None = None
    until: datetime | None = None
    by: str = ARRIVAL  # which time the range is of: arrival on the stream, or the event's
    event_types: tuple[str, ...] = ()
    aggregate_ids: tuple[str, ...] = ()
    shards: tuple[str, ...] = ()
    lateness: timedelta = DEFAULT_LATENESS  # event time: how long after it an event arrives

    def __post_init__(self) -> None:
        if self.by not in (ARRIVAL, EVENT):
            raise ReplayError(f"--by must be {ARRIVAL} or {EVENT}, not {self.by!r}")
        if self.since is not None and self.until is not None and self.since >= self.until:
            raise ReplayError(
                f"--since {self.since.isoformat()} is not before --until "
                f"{self.until.isoformat()}: the range is empty"
            )

    def arrival_bounds(self) -> tuple[datetime | None, datetime | None]:
        """The arrival times whose hour partitions can hold a selected event."""
        if self.by == ARRIVAL:
            return self.since, self.until
        # An event arrives after it occurred (clocks drift: an hour's margin before).
        since = None if self.since is None else self.since - _HOUR
        until = None if self.until is None else self.until + self.lateness
        return since, until

    def selects(self, entry: ArchivedEvent, event: DecodedEvent) -> bool:
        if self.shards and entry.record.shard_id not in self.shards:
            return False
        if self.event_types and event.event_type not in self.event_types:
            return False
        metadata = event.record["metadata"]
        if self.aggregate_ids and metadata.get("aggregate_id") not in self.aggregate_ids:
            return False
        if self.by == ARRIVAL:
            when = _arrival(entry)
            if when is None:
                return self.since is None and self.until is None
        else:
            when = metadata["occurred_at"].astimezone(UTC)
        if self.since is not None and when < self.since:
            return False
        return not (self.until is not None and when >= self.until)

    def to_dict(self) -> dict[str, Any]:
        return {
            "since": None if self.since is None else self.since.isoformat(),
            "until": None if self.until is None else self.until.isoformat(),
            "by": self.by,
            "event_types": list(self.event_types),
            "aggregate_ids": list(self.aggregate_ids),
            "shards": list(self.shards),
            "lateness_seconds": self.lateness.total_seconds(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Selection:
        return cls(
            since=None if data["since"] is None else datetime.fromisoformat(data["since"]),
            until=None if data["until"] is None else datetime.fromisoformat(data["until"]),
            by=data["by"],
            event_types=tuple(data["event_types"]),
            aggregate_ids=tuple(data["aggregate_ids"]),
            shards=tuple(data["shards"]),
            lateness=timedelta(seconds=data["lateness_seconds"]),
        )


def _arrival(entry: ArchivedEvent) -> datetime | None:
    arrival = entry.record.approximate_arrival
    return None if arrival is None else datetime.fromtimestamp(arrival, UTC)


def day_prefixes(prefix: str, since: datetime | None, until: datetime | None) -> list[str]:
    """The ``dt=`` folders to list for arrivals in [since, until); the whole prefix if open."""
    base = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
    if since is None or until is None:
        return [base]
    first, last = since.date(), (until - timedelta(microseconds=1)).date()
    days = (last - first).days
    return [f"{base}dt={(first + timedelta(days=d)).isoformat()}/" for d in range(days + 1)]


def _key_hour(key: str) -> datetime | None:
    """The arrival hour of an archive key (``.../dt=YYYY-MM-DD/hour=HH/...``)."""
    parts = {p.split("=", 1)[0]: p.split("=", 1)[1] for p in key.split("/") if "=" in p}
    try:
        day = date.fromisoformat(parts["dt"])
        return datetime(day.year, day.month, day.day, int(parts["hour"]), tzinfo=UTC)
    except (KeyError, ValueError):
        return None


def hour_in_range(hour: datetime, since: datetime | None, until: datetime | None) -> bool:
    """Whether arrivals of ``hour`` can fall in [since, until)."""
    if since is not None and hour + _HOUR <= since:
        return False
    return not (until is not None and hour >= until)


@dataclass(frozen=True)
class ArchiveObject:
    key: str
    size: int


def list_objects(s3: Any, bucket: str, prefix: str, selection: Selection) -> list[ArchiveObject]:
    """The archive objects whose arrival hours can hold a selected event, in key order."""
    since, until = selection.arrival_bounds()
    found: list[ArchiveObject] = []
    for folder in day_prefixes(prefix, since, until):
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=folder):
            for item in page.get("Contents", []):
                key = item["Key"]
                if not key.endswith(".avro"):
                    continue
                hour = _key_hour(key)
                if hour is None or not hour_in_range(hour, since, until):
                    continue
                if selection.shards and not any(
                    key.rsplit("/", 1)[-1].startswith(f"{s}-") for s in selection.shards
                ):
                    continue
                found.append(ArchiveObject(key, int(item["Size"])))
    return sorted(found, key=lambda o: o.key)


@dataclass(frozen=True)
class Selected:
    """One event to re-drive: where it is in the archive, and what it decoded to."""

    key: str
    offset: int  # the entry's position in its object
    entry: ArchivedEvent
    event: DecodedEvent


def read_selected(
    s3: Any,
    bucket: str,
    objects: Sequence[ArchiveObject],
    selection: Selection,
    codec: Codec,
    after: tuple[str, int] | None = None,
) -> Iterator[Selected]:
    """The selected events of ``objects``, in order; only those after ``after`` (a checkpoint
    of object key and entry offset)."""
    for obj in objects:
        if after is not None and obj.key < after[0]:
            continue
        data = s3.get_object(Bucket=bucket, Key=obj.key)["Body"].read()
        entries = sorted(
            enumerate(read_archive(data)),
            key=lambda p: (int(p[1].record.sequence_number), p[1].record.sub_sequence_number),
        )
        for offset, entry in entries:
            if after is not None and obj.key == after[0] and offset <= after[1]:
                continue
            if entry.is_poison:
                continue
            event = codec.decode(entry.record.data)
            if selection.selects(entry, event):
                yield Selected(obj.key, offset, entry, event)


@dataclass
class Plan:
    """What a replay would re-drive, and how long it would take."""

    selection: Selection
    objects: int
    object_bytes: int
    events: int
    event_bytes: int
    by_type: dict[str, int]
    shards: int
    rate: float | None = None
    speedup: float | None = None
    first_arrival: datetime | None = None
    last_arrival: datetime | None = None

    @property
    def estimated_seconds(self) -> float:
        """At the pace chosen, and never faster than the stream's shards take the bytes."""
        floor = self.event_bytes / (SHARD_BYTES_PER_SECOND * max(self.shards, 1))
        paced = 0.0
        if self.rate:
            paced = self.events / self.rate
        elif self.speedup and self.first_arrival and self.last_arrival:
            paced = (self.last_arrival - self.first_arrival).total_seconds() / self.speedup
        return max(floor, paced)

    def to_dict(self) -> dict[str, Any]:
        return {
            "selection": self.selection.to_dict(),
            "objects": self.objects,
            "object_bytes": self.object_bytes,
            "events": self.events,
            "event_bytes": self.event_bytes,
            "by_type": dict(sorted(self.by_type.items())),
            "shards": self.shards,
            "rate": self.rate,
            "speedup": self.speedup,
            "first_arrival": None if self.first_arrival is None else self.first_arrival.isoformat(),
            "last_arrival": None if self.last_arrival is None else self.last_arrival.isoformat(),
            "estimated_seconds": round(self.estimated_seconds, 3),
        }


def plan(
    s3: Any,
    bucket: str,
    prefix: str,
    selection: Selection,
    *,
    shards: int,
    rate: float | None = None,
    speedup: float | None = None,
    codec: Codec | None = None,
) -> Plan:
    """Read the selection (nothing is written) and count what a replay would put."""
    codec = codec or Codec()
    objects = list_objects(s3, bucket, prefix, selection)
    by_type: dict[str, int] = {}
    events = event_bytes = 0
    first = last = None
    for item in read_selected(s3, bucket, objects, selection, codec):
        events += 1
        event_bytes += len(item.entry.record.data) + len(item.entry.record.partition_key)
        by_type[item.event.event_type] = by_type.get(item.event.event_type, 0) + 1
        arrival = _arrival(item.entry)
        if arrival is not None:
            first = arrival if first is None or arrival < first else first
            last = arrival if last is None or arrival > last else last
    return Plan(
        selection=selection,
        objects=len(objects),
        object_bytes=sum(o.size for o in objects),
        events=events,
        event_bytes=event_bytes,
        by_type=by_type,
        shards=shards,
        rate=rate,
        speedup=speedup,
        first_arrival=first,
        last_arrival=last,
    )


class Pacer:
    """Holds a replay to ``rate`` events/s (a token bucket), or to the original arrival times
    sped up ``speedup`` times; and always to ``max_bytes_per_second``."""

    def __init__(
        self,
        *,
        rate: float | None = None,
        speedup: float | None = None,
        max_bytes_per_second: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate is not None and rate <= 0:
            raise ReplayError(f"--rate must be above 0 events/s, not {rate}")
        if speedup is not None and speedup <= 0:
            raise ReplayError(f"--speedup must be above 0, not {speedup}")
        if rate is not None and speedup is not None:
            raise ReplayError("give --rate or --speedup, not both")
        self.rate = rate
        self.speedup = speedup
        self.max_bytes_per_second = max_bytes_per_second
        self._clock = clock
        self._sleep = sleep
        self._started = clock()
        self._events = 0.0
        self._bytes = 0.0
        self._first_arrival: datetime | None = None

    def wait(self, events: int, data_bytes: int, arrival: datetime | None = None) -> None:
        """Block until ``events`` more events of ``data_bytes`` bytes may go."""
        self._events += events
        self._bytes += data_bytes
        due = self._bytes / self.max_bytes_per_second
        if self.rate is not None:
            due = max(due, self._events / self.rate)
        elif self.speedup is not None and arrival is not None:
            if self._first_arrival is None:
                self._first_arrival = arrival
            due = max(due, (arrival - self._first_arrival).total_seconds() / self.speedup)
        delay = self._started + due - self._clock()
        if delay > 0:
            self._sleep(delay)


def open_shards(kinesis: Any, stream_name: str) -> int:
    """How many shards of the stream take writes now (the pace's byte bound)."""
    summary = kinesis.describe_stream_summary(StreamName=stream_name)
    return int(summary["StreamDescriptionSummary"]["OpenShardCount"])


def shard_bound_pacer(
    shards: int, rate: float | None = None, speedup: float | None = None
) -> Pacer:
    """A pacer at ``rate`` or ``speedup``, never above ``shards`` x 1 MiB/s."""
    return Pacer(rate=rate, speedup=speedup, max_bytes_per_second=SHARD_BYTES_PER_SECOND * shards)


@dataclass
class ReplayRecord:
    """A replay's id, what it selected, where it stands."""

    replay_id: str
    target: str
    selection: dict[str, Any]
    state: str = "running"
    rate: float | None = None
    speedup: float | None = None
    planned_events: int = 0
    replayed_events: int = 0
    checkpoint: tuple[str, int] | None = None  # (object key, entry offset) last put
    started_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    updated_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    error: str | None = None
    rebuild: dict[str, Any] | None = None  # --target projections: tables and cut (rebuild.py)
    result: dict[str, Any] | None = None  # --target projections: the diff; lake: the commits

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["checkpoint"] = None if self.checkpoint is None else list(self.checkpoint)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ReplayRecord:
        checkpoint = data.get("checkpoint")
        return cls(**{**data, "checkpoint": None if checkpoint is None else tuple(checkpoint)})


def new_replay_id() -> str:
    return f"rp-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"


class ReplayStore:
    """Replays' records, one JSON file each under the workspace's state folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path(self, replay_id: str) -> Path:
        if not replay_id.startswith("rp-") or "/" in replay_id:
            raise ReplayError(f"{replay_id!r} is not a replay id (they look like rp-...)")
        return self.folder / f"{replay_id}.json"

    def save(self, record: ReplayRecord) -> None:
        record.updated_at = datetime.now(UTC).isoformat()
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.path(record.replay_id)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(record.to_dict(), indent=2) + "\n")
        os.replace(temporary, path)

    def load(self, replay_id: str) -> ReplayRecord:
        path = self.path(replay_id)
        if not path.is_file():
            known = ", ".join(r.replay_id for r in self.all()) or "none"
            raise ReplayError(f"no replay {replay_id} in {self.folder} (known: {known})")
        return ReplayRecord.from_dict(json.loads(path.read_text()))

    def all(self) -> list[ReplayRecord]:
        if not self.folder.is_dir():
            return []
        return [
            ReplayRecord.from_dict(json.loads(p.read_text()))
            for p in sorted(self.folder.glob("rp-*.json"))
        ]


@contextmanager
def tracked(record: ReplayRecord, store: ReplayStore) -> Iterator[None]:
    """Run a replay's work with its record ``running``; ``cancelled`` on Ctrl-C or ``pipeline
    replay cancel``, ``failed`` (with the error) on anything else, both re-raised. Setting
    ``completed`` is the caller's, once all of its work is done."""
    record.state = "running"
    record.error = None
    store.save(record)
    try:
        yield
    except (KeyboardInterrupt, ReplayCancelled):
        record.state = "cancelled"
        store.save(record)
        raise
    except Exception as exc:
        record.state = "failed"
        record.error = f"{type(exc).__name__}: {exc}"
        store.save(record)
        raise


def stop_if_cancelled(record: ReplayRecord, store: ReplayStore) -> None:
    """Raise :class:`ReplayCancelled` if ``pipeline replay cancel`` marked the record."""
    if store.load(record.replay_id).state == "cancelled":
        raise ReplayCancelled(record.replay_id)


def advance(
    record: ReplayRecord,
    store: ReplayStore,
    items: Sequence[Selected],
    progress: Callable[[int], None] | None,
) -> None:
    """Checkpoint after ``items`` were applied, and report them."""
    record.replayed_events += len(items)
    record.checkpoint = (items[-1].key, items[-1].offset)
    store.save(record)
    if progress is not None:
        progress(len(items))


def replayed(event: DecodedEvent, replay_id: str) -> dict[str, Any]:
    """The event as archived, but for ``metadata.replay_id``."""
    record = dict(event.record)
    record["metadata"] = {**record["metadata"], "replay_id": replay_id}
    return record


def replay_to_stream(
    s3: Any,
    kinesis: Any,
    *,
    bucket: str,
    prefix: str,
    stream_name: str,
    record: ReplayRecord,
    store: ReplayStore,
    pacer: Pacer,
    codec: Codec | None = None,
    progress: Callable[[int], None] | None = None,
    producer: Producer | None = None,
) -> ReplayRecord:
    """Put every selected event after the record's checkpoint; checkpoint after each put.

    The record's state ends ``completed``, or ``cancelled`` on Ctrl-C, or ``failed`` on an
    error (both re-raised); ``resume`` continues from the checkpoint either way.
    """
    codec = codec or Codec()
    selection = Selection.from_dict(record.selection)
    producer = producer or Producer(kinesis, stream_name, codec=codec)
    objects = list_objects(s3, bucket, prefix, selection)
    chunk: list[Selected] = []

    def put(items: list[Selected]) -> None:
        stop_if_cancelled(record, store)
        size = sum(len(i.entry.record.data) + len(i.entry.record.partition_key) for i in items)
        pacer.wait(len(items), size, _arrival(items[0].entry))
        producer.put_events([replayed(i.event, record.replay_id) for i in items])
        advance(record, store, items, progress)

    # Paced, the chunks are small enough that the pace holds within a tenth of a second.
    most = _PUT_CHUNK if pacer.rate is None else max(1, min(_PUT_CHUNK, int(pacer.rate / 10)))
    span = None if pacer.speedup is None else timedelta(seconds=0.1 * pacer.speedup)
    with tracked(record, store):
        for item in read_selected(s3, bucket, objects, selection, codec, after=record.checkpoint):
            if chunk and (len(chunk) >= most or _beyond(chunk[0], item, span)):
                put(chunk)
                chunk = []
            chunk.append(item)
        if chunk:
            put(chunk)
    record.state = "completed"
    store.save(record)
    return record


def _beyond(first: Selected, item: Selected, span: timedelta | None) -> bool:
    """Whether ``item`` arrived more than ``span`` after ``first`` (a sped-up replay's chunk)."""
    if span is None:
        return False
    start, end = _arrival(first.entry), _arrival(item.entry)
    return start is not None and end is not None and end - start >= span
