"""The main job: the whole pipeline on the embedded emulator, with a summary.

Brings the ``local`` workspace up (emulator started, Terraform applied),
produces a seeded workload through the producer, runs the consumers that
Terraform deployed on the local runtime until they have caught up, and reports
what happened to every event, by type, from the metrics the functions emitted
(as CloudWatch would read them) and the on-failure destinations. Then it replays
the workload's arrival range from the archive onto the stream, drains again, and
compares every table, lake table and the archive with what they held before
(expected: no change). Everything is torn down unless asked to keep it.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from typing import Any

from pipelines.consumers.metrics import (
    EVENT_TYPE,
    EVENTS_ARCHIVED,
    EVENTS_NOT_ARCHIVED_REPLAYED,
    EVENTS_PROJECTED,
    EVENTS_QUARANTINED,
    EVENTS_SKIPPED_DUPLICATE,
    EVENTS_SKIPPED_STALE,
    POISON_ARCHIVED,
    UNKNOWN_TYPE,
)
from pipelines.stream.producer import Producer
from pipelines.stream.records import decode_stream_record
from pipelines_local.deadletters import failed_batches, recover
from pipelines_local.infra import stack
from pipelines_local.query import LocalEngine, format_result, named_query
from pipelines_local.runtime.runner import LocalRuntime
from pipelines_local.simulator import SPAN, simulate
from pipelines_local.workspace import DEFAULT_WORKSPACE, Workspace

# Progress callback: (step, done, total); total None for a step without a count.
Progress = Callable[[str, int, int | None], None]
CHUNK = 10_000
SIMULATED_SPAN = SPAN  # how far the simulator spreads event time
CONSUME_TIMEOUT_SECONDS = 1_800


@dataclass
class DemoReport:
    workspace: str
    endpoint_url: str
    stream_name: str
    name_prefix: str
    events: int
    seed: int
    produced: dict[str, int] = field(default_factory=dict)
    on_stream: dict[str, int] = field(default_factory=dict)
    shards: dict[str, int] = field(default_factory=dict)
    kinesis_records: int = 0
    projected: dict[str, int] = field(default_factory=dict)
    duplicates_skipped: dict[str, int] = field(default_factory=dict)
    stale_skipped: dict[str, int] = field(default_factory=dict)
    quarantined: dict[str, int] = field(default_factory=dict)
    dead_lettered: dict[str, int] = field(default_factory=dict)
    alerts: dict[str, dict[str, int]] = field(default_factory=dict)
    lake: dict[str, Any] = field(default_factory=dict)
    daily_analytics: list[dict[str, Any]] = field(default_factory=list)
    archive: dict[str, Any] = field(default_factory=dict)
    runtime: dict[str, Any] = field(default_factory=dict)
    replay: dict[str, Any] = field(default_factory=dict)
    rebuild: dict[str, Any] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    kept: bool = False

    @property
    def events_per_second(self) -> float:
        """Events produced and consumed per second, end to end (deployment excluded)."""
        busy = self.seconds.get("produce", 0.0) + self.seconds.get("consume", 0.0)
        return round(self.events / busy, 1) if busy else 0.0

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DemoReport:
        """The report back from :meth:`to_dict` (``pipeline demo --json``)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def to_dict(self) -> dict[str, Any]:
        return {
            "workspace": self.workspace,
            "endpoint_url": self.endpoint_url if self.kept else None,
            "stream_name": self.stream_name,
            "name_prefix": self.name_prefix,
            "events": self.events,
            "seed": self.seed,
            "produced": self.produced,
            "on_stream": self.on_stream,
            "shards": self.shards,
            "kinesis_records": self.kinesis_records,
            "projected": self.projected,
            "duplicates_skipped": self.duplicates_skipped,
            "stale_skipped": self.stale_skipped,
            "quarantined": self.quarantined,
            "dead_lettered": self.dead_lettered,
            "alerts": self.alerts,
            "lake": self.lake,
            "daily_analytics": self.daily_analytics,
            "archive": self.archive,
            "runtime": self.runtime,
            "replay": self.replay,
            "rebuild": self.rebuild,
            "events_per_second": self.events_per_second,
            "seconds": self.seconds,
            "kept": self.kept,
        }


def _sinks(workspace: Workspace) -> dict[str, Any]:
    """A digest of what every sink holds: each table's items, each lake table's counts, the
    archive's objects and the alerts raised."""
    dynamodb = workspace.client("dynamodb")
    tables = {}
    for projection in sorted(workspace.output("table_names")):
        digest = hashlib.sha256()
        items = 0
        lines: list[str] = []
        pages = dynamodb.get_paginator("scan").paginate(TableName=workspace.table(projection))
        for page in pages:
            lines.extend(json.dumps(item, sort_keys=True) for item in page["Items"])
        for line in sorted(lines):
            digest.update(line.encode())
            items += 1
        tables[projection] = {"items": items, "sha256": digest.hexdigest()}
    lake = {}
    catalog = workspace.lake_catalog()
    for event_type in catalog.tables.event_types:
        table = catalog.table(event_type, refresh=True)
        ids = []
        if table.current_snapshot() is not None:
            scan = table.scan(selected_fields=("event_id",)).to_arrow()
            ids = scan.column("event_id").to_pylist()
        lake[event_type] = {"rows": len(ids), "distinct_event_ids": len(set(ids))}
    s3 = workspace.client("s3")
    archive = hashlib.sha256()
    objects = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=workspace.bucket("archive")):
        for entry in page.get("Contents", []):
            archive.update(f"{entry['Key']} {entry['ETag']}".encode())
            objects += 1
    return {
        "tables": tables,
        "lake": lake,
        "archive": {"objects": objects, "sha256": archive.hexdigest()},
    }


def _replay_changes_nothing(
    workspace: Workspace, runtime: LocalRuntime, since: datetime
) -> dict[str, Any]:
    """Replay the workload's arrival range onto the stream, drain, and compare every sink."""
    from pipelines_local.replay import (
        ReplayRecord,
        ReplayStore,
        Selection,
        new_replay_id,
        open_shards,
        replay_to_stream,
        shard_bound_pacer,
    )

    before = _sinks(workspace)
    selection = Selection(since=since, until=datetime.now(UTC) + timedelta(seconds=1))
    kinesis = workspace.client("kinesis")
    record = ReplayRecord(new_replay_id(), "stream", selection.to_dict())
    done = replay_to_stream(
        workspace.client("s3"),
        kinesis,
        bucket=workspace.bucket("archive"),
        prefix=str(workspace.output("archive_prefix")),
        stream_name=workspace.stream_name,
        record=record,
        store=ReplayStore(workspace.state_dir / "replays" / workspace.name),
        pacer=shard_bound_pacer(open_shards(kinesis, workspace.stream_name)),
    )
    drained = runtime.run(until_drained=True, max_seconds=CONSUME_TIMEOUT_SECONDS)
    after = _sinks(workspace)
    changed = sorted(
        f"{kind}.{name}"
        for kind in ("tables", "lake")
        for name in before[kind]
        if before[kind][name] != after[kind].get(name)
    ) + (["archive"] if before["archive"] != after["archive"] else [])
    return {
        "replay_id": done.replay_id,
        "state": done.state,
        "events": done.replayed_events,
        "drained": drained.drained,
        "changed": changed,
        "unchanged": not changed,
        "sinks": after,
    }


def _rebuild_matches(workspace: Workspace) -> dict[str, Any]:
    """Rebuild the read models from the archive into shadow tables, diff them with the live
    ones, and drop the shadows (``pipeline replay --target projections``, then ``discard``)."""
    from pipelines_local.rebuild import RebuildPlan, drop_tables, rebuild_projections
    from pipelines_local.replay import ReplayRecord, ReplayStore, Selection, new_replay_id

    store = ReplayStore(workspace.state_dir / "replays" / workspace.name)
    record = ReplayRecord(new_replay_id(), "projections", Selection().to_dict())
    started = time.perf_counter()
    done = rebuild_projections(workspace, record, store)
    seconds = time.perf_counter() - started
    assert done.rebuild is not None and done.result is not None
    drop_tables(
        workspace.client("dynamodb"), list(RebuildPlan.from_dict(done.rebuild).shadow.values())
    )
    done.state = "discarded"
    store.save(done)
    tables = {
        projection: {k: t[k] for k in ("live_items", "shadow_items", "identical", "differing")}
        for projection, t in done.result["tables"].items()
    }
    return {
        "replay_id": done.replay_id,
        "events": done.result["events_applied"],
        "same": done.result["same"],
        "tables": tables,
        "rebuild_seconds": round(seconds, 2),
    }


@contextmanager
def _timed(seconds: dict[str, float], step: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        seconds[step] = round(time.perf_counter() - start, 2)


def _count_stream(kinesis: Any, stream: str, report: DemoReport) -> None:
    seen: Counter[str] = Counter()
    for shard in kinesis.list_shards(StreamName=stream)["Shards"]:
        shard_id = shard["ShardId"]
        iterator = kinesis.get_shard_iterator(
            StreamName=stream, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while iterator:
            page = kinesis.get_records(ShardIterator=iterator, Limit=10_000)
            for record in page["Records"]:
                report.kinesis_records += 1
                decoded = decode_stream_record(
                    record["Data"],
                    partition_key=record["PartitionKey"],
                    sequence_number=record["SequenceNumber"],
                )
                for delivered in decoded.events:
                    seen[delivered.event.event_type] += 1
                report.shards[shard_id] = report.shards.get(shard_id, 0) + len(decoded.events)
                if decoded.poison:
                    seen[UNKNOWN_TYPE] += len(decoded.poison)
            if not page["Records"]:
                break
            iterator = page.get("NextShardIterator")
    report.on_stream = dict(sorted(seen.items()))


# The events table reports what the projector did to every event.
PROJECTOR_SERVICE = "projector"
ARCHIVER_SERVICE = "archiver"


def _by_type(runtime: LocalRuntime, metric: str) -> dict[str, int]:
    metrics = runtime.output.metrics
    by_type = metrics.by_dimension(metric, EVENT_TYPE, service=PROJECTOR_SERVICE)
    return {t: int(n) for t, n in sorted(by_type.items()) if n}


def _summarise_consumers(runtime: LocalRuntime, report: DemoReport, workspace: Workspace) -> None:
    report.projected = _by_type(runtime, EVENTS_PROJECTED)
    report.duplicates_skipped = _by_type(runtime, EVENTS_SKIPPED_DUPLICATE)
    report.stale_skipped = _by_type(runtime, EVENTS_SKIPPED_STALE)
    report.quarantined = _by_type(runtime, EVENTS_QUARANTINED)
    sqs = workspace.client("sqs")
    kinesis = workspace.client("kinesis")
    s3 = workspace.client("s3")
    archive_bucket = workspace.bucket("archive")
    archive_prefix = str(workspace.output("archive_prefix"))
    dead: Counter[str] = Counter()
    destinations = {p.mapping.on_failure_destination for p in runtime.pollers}
    for arn in sorted(d for d in destinations if d and d.startswith("arn:aws:sqs:")):
        queue_url = sqs.get_queue_url(QueueName=arn.rsplit(":", 1)[-1])["QueueUrl"]
        for batch in failed_batches(sqs, queue_url):
            found = recover(
                batch,
                s3=s3,
                archive_bucket=archive_bucket,
                archive_prefix=archive_prefix,
                kinesis=kinesis,
            )
            for record in found.records:
                poison = record.poison_code is not None or record.event_type is None
                dead[UNKNOWN_TYPE if poison else str(record.event_type)] += 1
    report.dead_lettered = dict(sorted(dead.items()))


def _archived(runtime: LocalRuntime) -> dict[str, int]:
    """What the archiver archived, from its metrics: events, poison, replayed events left out."""
    metrics = runtime.output.metrics
    return {
        key: int(metrics.total(name, service=ARCHIVER_SERVICE))
        for key, name in (
            ("events", EVENTS_ARCHIVED),
            ("poison", POISON_ARCHIVED),
            ("replayed_not_archived", EVENTS_NOT_ARCHIVED_REPLAYED),
        )
    }


def _objects_summary(s3: Any, bucket: str) -> dict[str, Any]:
    """Objects, bytes and partitions (``<dataset>/<key>=<value>/...`` folders) in a bucket."""
    objects = 0
    size = 0
    partitions: set[str] = set()
    datasets: dict[str, int] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            objects += 1
            size += int(item["Size"])
            parts = item["Key"].split("/")
            partitions.add("/".join(parts[:-1]))
            datasets[parts[0]] = datasets.get(parts[0], 0) + 1
    return {"objects": objects, "bytes": size, "partitions": len(partitions), "datasets": datasets}


def _score_alerts(
    dynamodb: Any, table: str, injected: dict[str, list[str]]
) -> dict[str, dict[str, int]]:
    """Alerts raised, by rule, against the cases the simulator injected."""
    raised: dict[str, set[str]] = {}
    for page in dynamodb.get_paginator("scan").paginate(
        TableName=table,
        ProjectionExpression="#r, event_id",
        ExpressionAttributeNames={"#r": "rule"},
    ):
        for item in page["Items"]:
            raised.setdefault(item["rule"]["S"], set()).add(item["event_id"]["S"])
    scores = {}
    for rule in sorted(set(injected) | set(raised)):
        expected = set(injected.get(rule, []))
        got = raised.get(rule, set())
        scores[rule] = {
            "injected": len(expected),
            "caught": len(expected & got),
            "missed": len(expected - got),
            "extra": len(got - expected),
        }
    return scores


def run_demo(
    events: int = 5_000,
    seed: int = 1,
    *,
    workspace: str = DEFAULT_WORKSPACE,
    keep: bool = False,
    progress: Progress | None = None,
) -> DemoReport:
    """Run the whole story once; see the module docstring."""
    notify = progress or (lambda step, done, total: None)
    seconds: dict[str, float] = {}
    notify("deploying (emulator + terraform apply)", 0, None)
    with _timed(seconds, "deploy"):
        up = stack.up(workspace, progress=notify)
    deployed = Workspace.load(workspace)
    stream = deployed.stream_name
    report = DemoReport(
        workspace,
        up.endpoint_url,
        stream,
        str(deployed.output("name_prefix")),
        events,
        seed,
        seconds=seconds,
    )
    try:
        # Event time ends now, so the daily analytics' seven-day window sees it and no event
        # is dated in the future (the contract refuses those).
        first = datetime.now(UTC).replace(microsecond=0) - SIMULATED_SPAN - timedelta(minutes=1)
        simulated = simulate(events, seed, start=first)
        workload = simulated.events
        report.produced = dict(
            sorted(Counter(e["metadata"]["event_type"] for e in workload).items())
        )
        kinesis = deployed.client("kinesis")
        producer = Producer(kinesis, stream)
        produced_since = datetime.now(UTC) - timedelta(seconds=1)
        with _timed(seconds, "produce"):
            for start in range(0, len(workload), CHUNK):
                producer.put_events(workload[start : start + CHUNK])
                notify("producing", min(start + CHUNK, len(workload)), len(workload))
        notify("reading the stream back", 0, None)
        with _timed(seconds, "read_back"):
            _count_stream(kinesis, stream, report)
        runtime = deployed.runtime()

        def consumed(rt: LocalRuntime) -> None:
            metrics = rt.output.metrics
            done = sum(
                int(metrics.total(name, service=PROJECTOR_SERVICE))
                for name in (EVENTS_PROJECTED, EVENTS_QUARANTINED, EVENTS_SKIPPED_DUPLICATE)
            )
            notify("consuming (local runtime)", min(done, len(workload)), len(workload))

        with _timed(seconds, "consume"):
            result = runtime.run(
                until_drained=True, max_seconds=CONSUME_TIMEOUT_SECONDS, progress=consumed
            )
        report.runtime = result.to_dict()
        _summarise_consumers(runtime, report, deployed)
        s3 = deployed.client("s3")
        report.lake = _objects_summary(s3, deployed.bucket("lake"))
        report.archive = {
            **_objects_summary(s3, deployed.bucket("archive")),
            **_archived(runtime),
        }
        engine = LocalEngine(deployed.lake_catalog())
        analytics = engine.execute(named_query("daily_analytics"))
        report.daily_analytics = json.loads(format_result(analytics, "json"))
        report.alerts = _score_alerts(
            deployed.client("dynamodb"), deployed.table("alerts"), simulated.injected
        )
        notify("replaying the workload's hour from the archive", 0, None)
        with _timed(seconds, "replay"):
            report.replay = _replay_changes_nothing(deployed, runtime, produced_since)
        notify("rebuilding the read models into shadow tables and diffing them", 0, None)
        with _timed(seconds, "rebuild"):
            report.rebuild = _rebuild_matches(deployed)
    finally:
        if keep:
            report.kept = True
        else:
            notify("tearing down (terraform destroy)", 0, None)
            with _timed(seconds, "teardown"):
                stack.down(workspace, progress=notify)
    return report
