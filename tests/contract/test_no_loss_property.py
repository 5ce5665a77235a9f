"""The no-loss property: any mix of good and bad events, in any batches, loses no good one.

For a random mix of good events and bad ones (each kind a hostile producer was seen to put),
spread over random batches of plain records and KPL aggregates, every consumer runs its
batches on moto in-process, on copies of the stores Terraform defined:

* no record fails: nothing is left for Lambda to retry or dead-letter;
* every good event reaches every sink exactly once: projected, one lake row, one archive
  entry;
* every bad event is quarantined exactly once by each consumer that cannot apply it (with
  the bytes that arrived), and the archive keeps it too.
"""

from __future__ import annotations

import io
import itertools
import math
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from pipelines.adapters.quarantine import Quarantine
from pipelines.consumers.alerts.alerter import build_alerter
from pipelines.consumers.archive.archiver import build_archiver
from pipelines.consumers.archive.files import read_archive
from pipelines.consumers.batch import KinesisBatchKernel
from pipelines.consumers.config import (
    AlerterSettings,
    ArchiverSettings,
    LakeWriterSettings,
    ProjectorSettings,
)
from pipelines.consumers.lake import LakeWriter
from pipelines.consumers.projector.projector import build_projector
from pipelines.contract.codec import encode_event
from pipelines.contract.events import new_event
from pipelines.stream.aggregation import Aggregator
from tests.contract.conftest import in_process
from tests.hostile import forge
from tests.kinesis_events import kinesis_record
from tests.lake import local_lake
from tests.stack import FAST_WRITE_RETRIES, DeployedStack

NOW = datetime.now(UTC).replace(microsecond=0)
CONSUMERS = ("projector", "alerter", "lake-writer", "archiver")


def _at(rng_minutes: int) -> datetime:
    return NOW - timedelta(minutes=5 + rng_minutes)


def good_event(kind: int, n: int) -> dict[str, Any]:
    user = f"u-{n % 7}"
    at = _at(n)
    if kind == 0:
        body = {"user_id": user, "activity_type": "login", "details": {"n": str(n)}}
        return new_event("UserActivityRecorded", body, producer="p", occurred_at=at)
    if kind == 1:
        body = {"metric_name": "disk_usage", "value": float(n % 50), "source": "h", "tags": {}}
        return new_event("MetricRecorded", body, producer="p", occurred_at=at)
    body = {
        "transaction_id": f"tx-{uuid.uuid4().hex[:10]}",
        "user_id": user,
        "amount": Decimal(f"{n % 90}.2500"),
        "currency": "EUR",
        "merchant": "m",
        "category": "grocery",
        "status": "completed",
    }
    return new_event("TransactionRecorded", body, producer="p", occurred_at=at)


def _activity(**meta: Any) -> dict[str, Any]:
    event = good_event(0, 3)
    event["metadata"].update(meta)
    return event


# Each bad kind: its bytes (never the same twice), and the consumers that must quarantine it.
ALL = frozenset(CONSUMERS)
BAD: list[tuple[str, Callable[[], bytes], frozenset[str]]] = [
    ("junk", lambda: b"not an event: " + uuid.uuid4().bytes, ALL),
    ("unknown schema", lambda: b"\xc3\x01" + uuid.uuid4().bytes[:8] + b"\x02x", ALL),
    ("bad event id", lambda: forge(_activity(event_id="e" * 1064 + str(uuid.uuid4()))), ALL),
    (
        "future",
        lambda: forge(_activity(occurred_at=NOW + timedelta(days=400))),
        ALL,
    ),
    (
        "wide decimal",
        lambda: forge({**good_event(2, 1), "amount": Decimal("123456789012345678901234.5")}),
        ALL,
    ),
    (
        "nan",
        lambda: forge({**good_event(1, 1), "value": math.nan}),
        ALL,
    ),
    (
        "item over 400 KB",
        lambda: encode_event(
            new_event(
                "UserActivityRecorded",
                {"user_id": "u-big", "activity_type": "x", "details": {"b": "x" * 420_000}},
                producer="p",
                occurred_at=_at(1),
            )
        ),
        frozenset({"projector"}),
    ),
]

# One entry of a batch: ("good", kind) or ("bad", index into BAD).
_ENTRY = st.one_of(
    st.tuples(st.just("good"), st.integers(0, 2)),
    st.tuples(st.just("bad"), st.integers(0, len(BAD) - 1)),
)
# A record: one entry (plain) or several (an aggregate); a batch: some records.
_RECORD = st.lists(_ENTRY, min_size=1, max_size=4)
_BATCHES = st.lists(st.lists(_RECORD, min_size=1, max_size=6), min_size=1, max_size=3)


class Pipeline:
    """Every consumer on copies of the deployed stores, in one moto in-process backend."""

    def __init__(
        self, deployed: DeployedStack, lake_root: Path, client: Callable[[str], Any]
    ) -> None:
        self.s3 = client("s3")
        self.dynamodb = client("dynamodb")
        envs = {name: deployed.isolated(name, client=client).env for name in CONSUMERS}
        self.envs = envs
        projector = ProjectorSettings.from_env({**envs["projector"], **FAST_WRITE_RETRIES})
        alerter = AlerterSettings.from_env({**envs["alerter"], **FAST_WRITE_RETRIES})
        lake = LakeWriterSettings.from_env(envs["lake-writer"])
        archiver = ArchiverSettings.from_env(envs["archiver"])
        self.lake_root = lake_root
        self.projector_settings = projector
        self.archive_bucket = archiver.archive_bucket
        # Each consumer's copies are its own: its quarantine is a bucket of its own here.
        self.quarantine_buckets = {name: env["QUARANTINE_BUCKET"] for name, env in envs.items()}
        self.kernels: dict[str, KinesisBatchKernel] = {
            "projector": build_projector(projector, self.dynamodb, self.s3),
            "alerter": build_alerter(alerter, self.dynamodb, client("sns"), self.s3),
            # The lake's Iceberg tables in a local catalog (moto in-process has no Glue
            # commit path to speak of); its quarantine is in the backend like the others'.
            "lake-writer": KinesisBatchKernel(
                LakeWriter(local_lake(lake_root)),
                Quarantine(self.s3, lake.quarantine_bucket, "lake-writer"),
            ),
            "archiver": build_archiver(archiver, self.s3),
        }


@pytest.fixture
def pipeline(deployed: DeployedStack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    with in_process(deployed, monkeypatch) as client:
        yield Pipeline(deployed, tmp_path / "lake", client)


_SHARDS = itertools.count()


@settings(
    max_examples=15,
    deadline=None,
    # Each example runs four consumers against moto: shrinking would take minutes.
    phases=(Phase.explicit, Phase.reuse, Phase.generate),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batches=_BATCHES)
def test_every_good_event_reaches_every_sink_once_and_every_bad_one_is_quarantined_once(
    pipeline: Pipeline, batches: list[list[list[tuple[str, int]]]]
) -> None:
    shard = f"shardId-{next(_SHARDS):012d}"
    good: list[dict[str, Any]] = []
    bad: list[tuple[bytes, frozenset[str], str]] = []  # bytes, who quarantines, coordinates
    lambda_batches = []
    n = itertools.count(1)
    for batch in batches:
        records = []
        for entries in _fitting(batch):
            seq = next(n)
            items: list[tuple[str, bytes]] = []
            for sub, (what, which) in enumerate(entries):
                if what == "good":
                    event = good_event(which, len(good))
                    good.append(event)
                    items.append((event["metadata"]["aggregate_id"], encode_event(event)))
                else:
                    _, make, by = BAD[which]
                    data = make()
                    bad.append((data, by, f"{seq}-{sub if len(entries) > 1 else 0}"))
                    items.append((f"bad-{which}", data))
            if len(items) == 1:
                data = items[0][1]
            else:
                aggregator = Aggregator()
                for key, blob in items:
                    assert aggregator.add(key, blob)
                data = aggregator.seal()
            records.append(kinesis_record(data, items[0][0], seq, shard_id=shard))
        lambda_batches.append(records)

    for name, kernel in pipeline.kernels.items():
        for records in lambda_batches:
            outcome = kernel.process_batch(records)
            assert outcome.errors == [None] * len(records), (name, outcome.errors)

    # Good events: projected, one lake row, one archive entry each.
    ids = [e["metadata"]["event_id"] for e in good]
    lake = Counter(_lake_ids(pipeline.lake_root))
    assert {i: lake[i] for i in ids} == dict.fromkeys(ids, 1)
    archived = Counter(_archived(pipeline, shard))
    for event in good:
        assert archived[encode_event(event)] == 1
    for data, _, _ in bad:
        assert archived[data] == 1
    for event in good:
        assert _projected(pipeline, event), event["metadata"]
    # Bad events: once per consumer that cannot apply them, with their bytes.
    quarantined = _quarantined(pipeline, shard)
    expected = {}
    for data, by, coordinates in bad:
        for consumer in by:
            expected[(consumer, coordinates)] = data
    assert quarantined == expected


def _fitting(batch: list[list[tuple[str, int]]]) -> list[list[tuple[str, int]]]:
    """The batch's records, an aggregate split where its big items would not fit 1 MiB."""
    big = next(i for i, (name, _, _) in enumerate(BAD) if name == "item over 400 KB")
    out = []
    for entries in batch:
        current: list[tuple[str, int]] = []
        for entry in entries:
            if entry == ("bad", big) and ("bad", big) in current:
                out.append(current)
                current = []
            current.append(entry)
        out.append(current)
    return out


def _lake_ids(root: Path) -> list[str]:
    """Every event id the lake's tables hold, as a reader scans them."""
    lake = local_lake(root)
    ids: list[str] = []
    for event_type in lake.tables.event_types:
        table = lake.table(event_type, refresh=True)
        if table.current_snapshot() is not None:
            scan = table.scan(selected_fields=("event_id",)).to_arrow()
            ids.extend(scan.column("event_id").to_pylist())
    return ids


def _objects(pipeline: Pipeline, bucket: str, prefix: str = "") -> dict[str, bytes]:
    out = {}
    pages = pipeline.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    for page in pages:
        for entry in page.get("Contents", []):
            body = pipeline.s3.get_object(Bucket=bucket, Key=entry["Key"])["Body"].read()
            out[entry["Key"]] = body
    return out


def _archived(pipeline: Pipeline, shard: str) -> list[bytes]:
    out = []
    for key, data in _objects(pipeline, pipeline.archive_bucket).items():
        if shard in key and key.endswith(".avro"):
            out.extend(entry.record.data for entry in read_archive(io.BytesIO(data)))
    return out


def _quarantined(pipeline: Pipeline, shard: str) -> dict[tuple[str, str], bytes]:
    out = {}
    for bucket in set(pipeline.quarantine_buckets.values()):
        for key, data in _objects(pipeline, bucket).items():
            consumer, key_shard, name = key.split("/")
            if key_shard != shard or not name.endswith(".avro"):
                continue
            sequence, sub = name[: -len(".avro")].rsplit("-", 1)
            out[(consumer, f"{int(sequence[-4:])}-{sub}")] = data
    return out


def _projected(pipeline: Pipeline, event: dict[str, Any]) -> bool:
    tables = pipeline.projector_settings.tables
    meta = event["metadata"]
    kind = meta["event_type"]
    at = meta["occurred_at"].strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{meta['occurred_at'].microsecond // 1000:03d}Z"
    )
    if kind == "UserActivityRecorded":
        table = tables.user_activities
        key = {"user_id": {"S": event["user_id"]}, "timestamp": {"S": f"{at}#{meta['event_id']}"}}
    elif kind == "MetricRecorded":
        table = tables.system_metrics
        key = {"metric_id": {"S": f"h#disk_usage#{at}#{meta['event_id']}"}}
    else:
        table = tables.transactions
        key = {"transaction_id": {"S": event["transaction_id"]}}
    return "Item" in pipeline.dynamodb.get_item(TableName=table, Key=key)
