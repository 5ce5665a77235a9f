"""How much of a batch lands when 1% of its events are poison.

Target: at least 99% of a 10,000-event batch lands when 100 of its events are poison, that
is, every good event. A workspace of its own is deployed on the embedded emulator (as
``pipeline up`` does, in a state directory that is removed afterwards); each consumer is
built from its function's environment as Terraform set it and handed the same batch: the
events in KPL aggregates as the producer packs them, with the poison (ten kinds a hostile
producer was seen to put) spread among them at random. An event *lands* when its record
did not fail and it was not quarantined; the lake's rows and the archive's entries are
counted too.
"""

from __future__ import annotations

import math
import random
import shutil
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3

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
from pipelines.consumers.lake.writer import build_lake_writer
from pipelines.consumers.metrics import EVENTS_QUARANTINED
from pipelines.consumers.projector.projector import build_projector
from pipelines.contract.codec import encode_event
from pipelines.contract.events import new_event
from pipelines.stream.aggregation import Aggregator
from pipelines_local.emulator import stop_emulator
from pipelines_local.infra import stack
from pipelines_local.simulator import SPAN, simulate
from pipelines_local.workspace import Workspace
from tests.hostile import forge
from tests.kinesis_events import kinesis_record

N_EVENTS = 10_000
N_POISON = 100
WORKSPACE = "bench-poison"
NOW = datetime.now(UTC).replace(microsecond=0)


def poison(i: int) -> bytes:
    """The ``i``-th poison event: ten kinds in turn, each with bytes of its own."""
    at = NOW - timedelta(minutes=10)
    user = f"bad-{i}"

    def tx(**changes: Any) -> dict[str, Any]:
        body = {
            "transaction_id": f"tx-{uuid.uuid4().hex[:8]}",
            "user_id": user,
            "amount": Decimal("1.0000"),
            "currency": "EUR",
            "merchant": "m",
            "category": "c",
            "status": "completed",
        }
        body.update(changes)
        return new_event("TransactionRecorded", body, producer="bench", occurred_at=at)

    def metric(value: float) -> dict[str, Any]:
        body = {"metric_name": "cpu_usage", "value": value, "source": user, "tags": {}}
        return new_event("MetricRecorded", body, producer="bench", occurred_at=at)

    kind = i % 10
    if kind == 0:
        return forge(tx(amount=Decimal("123456789012345678901234.5")))
    if kind == 1:
        return forge(metric(math.nan))
    if kind == 2:
        return forge(metric(math.inf))
    if kind == 3:
        event = tx()
        event["metadata"]["event_id"] = "e" * 1064 + str(uuid.uuid4())
        return forge(event)
    if kind == 4:
        event = tx()
        event["user_id"] = event["metadata"]["aggregate_id"] = ""
        return forge(event)
    if kind == 5:
        event = metric(1.0)
        event["metadata"]["occurred_at"] = datetime(9999, 1, 1, tzinfo=UTC)
        return forge(event)
    if kind == 6:
        return forge(tx(amount=Decimal("-5.0000")))
    if kind == 7:
        return b"\xc3\x01" + uuid.uuid4().bytes[:8] + b"\x02"
    if kind == 8:
        return b"not an event: " + uuid.uuid4().bytes
    body = {"user_id": user, "activity_type": "x", "details": {"b": "x" * 420_000}}
    return encode_event(new_event("UserActivityRecorded", body, producer="bench", occurred_at=at))


def batch() -> tuple[list[dict[str, Any]], list[int], int]:
    """The Lambda records of one batch, the events in each, and how many events are good."""
    rng = random.Random(7)
    good = simulate(N_EVENTS - N_POISON, seed=7, start=NOW - SPAN - timedelta(hours=1)).events
    items = [(e["metadata"]["aggregate_id"], encode_event(e)) for e in good]
    for i in range(N_POISON):
        items.insert(rng.randrange(len(items) + 1), (f"bad-{i}", poison(i)))
    records, sizes = [], []
    aggregator = Aggregator()
    for key, data in items:
        if not aggregator.add(key, data):
            records.append(aggregator.seal())
            sizes.append(len(aggregator))
            aggregator = Aggregator()
            aggregator.add(key, data)
    records.append(aggregator.seal())
    sizes.append(len(aggregator))
    return [kinesis_record(r, "k", n) for n, r in enumerate(records, 1)], sizes, len(good)


def kernels(workspace: Workspace) -> dict[str, KinesisBatchKernel]:
    env = workspace.env()

    def client(service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=workspace.endpoint_url,
            region_name=env["AWS_REGION"],
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        )

    lam = client("lambda")

    def function_env(name: str) -> dict[str, str]:
        config = lam.get_function_configuration(FunctionName=workspace.function(name))
        variables: dict[str, str] = config["Environment"]["Variables"]
        return variables

    s3, dynamodb = client("s3"), client("dynamodb")
    lake = LakeWriterSettings.from_env(function_env("lake-writer"))
    return {
        "projector": build_projector(
            ProjectorSettings.from_env(function_env("projector")), dynamodb, s3
        ),
        "alerter": build_alerter(
            AlerterSettings.from_env(function_env("alerter")), dynamodb, client("sns"), s3
        ),
        "lake-writer": build_lake_writer(
            lake,
            Quarantine(s3, lake.quarantine_bucket, "lake-writer"),
            catalog=workspace.lake_catalog().catalog,
        ),
        "archiver": build_archiver(ArchiverSettings.from_env(function_env("archiver")), s3),
    }


def _sink_counts(workspace: Workspace) -> tuple[int, int]:
    """Rows the lake's tables hold (as a reader scans them) and entries the archive holds."""
    lake = workspace.lake_catalog()
    rows = 0
    for event_type in lake.tables.event_types:
        table = lake.table(event_type, refresh=True)
        if table.current_snapshot() is not None:
            rows += table.scan(selected_fields=("event_id",)).to_arrow().num_rows
    s3 = workspace.client("s3")
    archived = 0
    name = workspace.bucket("archive")
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name):
        for entry in page.get("Contents", []):
            if entry["Key"].endswith(".avro"):
                body = s3.get_object(Bucket=name, Key=entry["Key"])["Body"].read()
                archived += sum(1 for _ in read_archive(body))
    return rows, archived


def main() -> None:
    state = Path(tempfile.mkdtemp(prefix="bench-poison-"))
    up = stack.up(WORKSPACE, state_dir=state)
    try:
        workspace = Workspace.load(WORKSPACE, state)
        records, sizes, n_good = batch()
        print(
            f"{N_EVENTS:,} events in {len(records)} aggregated records, {N_POISON} of them "
            f"poison; each consumer built from its function's environment on the emulator"
        )
        rows = []
        for name, kernel in kernels(workspace).items():
            started = time.perf_counter()
            outcome = kernel.process_batch(records)
            seconds = time.perf_counter() - started
            failed_events = sum(n for n, e in zip(sizes, outcome.errors, strict=True) if e)
            failed = sum(1 for e in outcome.errors if e is not None)
            quarantined = int(outcome.counts.totals[EVENTS_QUARANTINED])
            landed = N_EVENTS - quarantined - failed_events
            rows.append((name, landed, quarantined, failed, seconds))
        lake_rows, archived = _sink_counts(workspace)
        width = max(len(r[0]) for r in rows)
        print(f"{'consumer':<{width}}  {'landed':>16}  quarantined  failed records  seconds")
        for name, landed, quarantined, failed, seconds in rows:
            share = f"{landed:,} ({landed / N_EVENTS:.1%})"
            print(f"{name:<{width}}  {share:>16}  {quarantined:>11}  {failed:>14}  {seconds:7.1f}")
        print(f"good events: {n_good:,}; target: >= 99% of the batch lands")
        print(f"lake rows written: {lake_rows:,}; archive entries: {archived:,} (poison included)")
    finally:
        if up.emulator_pid is not None:
            stop_emulator(up.emulator_pid)
        shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    main()
