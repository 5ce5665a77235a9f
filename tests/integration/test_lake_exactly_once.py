"""The lake holds every produced event exactly once, however delivery misbehaves.

One workload is produced onto a fresh two-shard stream and written by the lake writer's
handler under the local runtime, once per scenario (DESIGN.md, "Delivery semantics"):

* ``clean`` - the handler as deployed;
* ``delivered_twice`` - every batch delivered twice (a duplicate invocation);
* ``crash_midway`` - the function crashing after some of a batch's tables were committed;
* ``longer_retry`` - a first delivery commits half the batch and crashes, the retry brings
  the whole (a restart from the checkpoint after new records arrived);
* ``shorter_retry`` - a first delivery commits the batch and crashes, the retry comes in
  halves (the batch size changed);
* ``s3_faults`` - S3 failing one object write part-way through some batches' first delivery;
* ``produced_twice`` - the whole workload produced twice, as ``pipeline simulate`` run twice
  with one seed does: every event again at new sequence numbers;
* ``reput_20pct`` - a fifth of the events put again at new sequence numbers (a producer's
  retry after a lost response, or a replay onto the stream).

The faults are injected by :mod:`tests.integration.lake_once_handlers` (how, and why there,
is in its docstring). Every run gets its own stream, function and mapping, and copies of the
lake writer's buckets and Glue database. The mapping is the lake writer's:
``ReportBatchItemFailures``, ``BisectBatchOnFunctionError`` false.

Each of the six tables must then answer ``SELECT count(*), count(DISTINCT event_id)`` with
the number of events of its type produced. (The archive is the archiver's, with a mapping of
its own: tests/integration/test_archiver.py.) One statement asks all six tables (a ``UNION
ALL`` of the per-table counts), through :class:`~pipelines_local.query.LocalEngine` after every
run and also through ``pipeline query --format json`` in a subprocess, as a user would.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pipelines.consumers.lake import table_name
from pipelines.stream.producer import Producer
from pipelines_local.query import LocalEngine
from pipelines_local.runtime import MappingStats
from pipelines_local.simulator import simulate
from pipelines_local.workspace import Workspace
from tests.integration import lake_once_handlers as wrappers
from tests.integration.runtime_stack import RuntimeStack
from tests.stack import DeployedStack

pytestmark = [pytest.mark.integration, pytest.mark.needs("glue", "local_runtime")]

WORKLOAD_EVENTS = 300
WORKLOAD_SEED = 7
# Small aggregates, so a batch holds several KPL records and a record several events.
MAX_AGGREGATE_BYTES = 1500
BATCH_SIZE = 14
MAX_RETRIES = 10
RUN_SECONDS = 90

LAKE_WRITER = "functions.lake_writer.handler.lambda_handler"
WRAPPERS = wrappers.__name__
HANDLERS = {
    "clean": LAKE_WRITER,
    "delivered_twice": f"{WRAPPERS}.deliver_twice",
    "crash_midway": f"{WRAPPERS}.crash_midway",
    "longer_retry": f"{WRAPPERS}.longer_retry",
    "shorter_retry": f"{WRAPPERS}.shorter_retry",
    "s3_faults": f"{WRAPPERS}.s3_faults",
    "produced_twice": LAKE_WRITER,
    "reput_20pct": LAKE_WRITER,
}
REPUT_SHARE = 0.2
TABLE_NAMES = (
    "user_registered",
    "user_profile_updated",
    "user_activity_recorded",
    "image_labeled",
    "metric_recorded",
    "transaction_recorded",
)
REPO = Path(__file__).resolve().parents[2]


@dataclass
class Run:
    """What one run left behind."""

    scenario: str
    lake_database: str
    lake_bucket: str
    counts: dict[str, tuple[int, int]]  # table -> (count(*), count(DISTINCT event_id))
    stats: MappingStats
    drained: bool
    seconds: float
    wrapper_counts: Counter[str]
    quarantined: int


class LakeStack(RuntimeStack):
    """A stream, a function and its mapping, all fresh, on copies of the lake writer's
    buckets and Glue database.

    The function's environment is the deployed lake writer's, as Terraform set it, naming
    the copies.
    """

    handler_module = None  # handlers are named in full
    function_timeout = 300
    function_memory = 1024

    def __init__(self, deployed: DeployedStack, tmp_path: Path) -> None:
        super().__init__(deployed.client, deployed.endpoint_url, tmp_path)
        self.s3 = deployed.client("s3")
        self.isolated = deployed.isolated("lake-writer", self.prefix.rstrip("-"))
        self.lake, self.quarantine = (
            self.isolated.buckets[name] for name in ("lake", "quarantine")
        )

    def environment(self) -> dict[str, str]:
        return {**self.isolated.env, "POWERTOOLS_TRACE_DISABLED": "true"}

    def keys(self, bucket: str) -> list[str]:
        paginator = self.s3.get_paginator("list_objects_v2")
        return [
            o["Key"] for page in paginator.paginate(Bucket=bucket) for o in page.get("Contents", [])
        ]


def every_table_sql() -> str:
    """One statement: each table's name and its two counts, a row per table."""
    return "\nUNION ALL\n".join(
        f"SELECT '{table}' AS tbl, count(*) AS events, count(DISTINCT event_id) AS ids FROM {table}"
        for table in TABLE_NAMES
    )


@pytest.fixture(scope="module")
def workload() -> list[dict[str, Any]]:
    return simulate(WORKLOAD_EVENTS, seed=WORKLOAD_SEED).events


@pytest.fixture(scope="module")
def produced(workload: list[dict[str, Any]]) -> dict[str, int]:
    """Events produced, by table."""
    by_table = Counter(table_name(e["metadata"]["event_type"]) for e in workload)
    assert set(by_table) == set(TABLE_NAMES)
    return dict(by_table)


@pytest.fixture(scope="module")
def run_scenario(
    deployed: DeployedStack,
    tmp_path_factory: pytest.TempPathFactory,
    workload: list[dict[str, Any]],
) -> Iterator[Callable[[str], Run]]:
    """``run_scenario(name)``: the workload through ``HANDLERS[name]``, once per module."""
    runs: dict[str, Run] = {}

    def run(name: str) -> Run:
        if name not in runs:
            stack = LakeStack(deployed, tmp_path_factory.mktemp(name))
            lake = deployed.workspace.lake_catalog(
                database=stack.isolated.database, bucket=stack.lake
            )
            runs[name] = _run(stack, name, workload, LocalEngine(lake))
        return runs[name]

    with pytest.MonkeyPatch.context() as monkeypatch:
        for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN"):
            monkeypatch.delenv(name, raising=False)
        for name, value in deployed.workspace.env().items():
            monkeypatch.setenv(name, value)
        yield run
    wrappers.reset()


def _run(
    stack: LakeStack, scenario: str, workload: list[dict[str, Any]], engine: LocalEngine
) -> Run:
    wrappers.reset()  # fresh faults, and lake writers built for this run's buckets
    stream_arn = stack.stream(shards=2)
    stack.function(HANDLERS[scenario], env=stack.environment())
    stack.mapping(
        stream_arn,
        BatchSize=BATCH_SIZE,
        FunctionResponseTypes=["ReportBatchItemFailures"],
        BisectBatchOnFunctionError=False,
        MaximumRetryAttempts=MAX_RETRIES,
    )
    producer = Producer(
        stack.kinesis,
        stack.stream_name,
        max_aggregate_bytes=MAX_AGGREGATE_BYTES,
        rng=random.Random(WORKLOAD_SEED),
    )
    producer.put_events(workload)
    if scenario == "produced_twice":
        producer.put_events(workload)
    elif scenario == "reput_20pct":
        rng = random.Random(WORKLOAD_SEED)
        producer.put_events(rng.sample(workload, int(len(workload) * REPUT_SHARE)))
    result = stack.runtime().run(until_drained=True, max_seconds=RUN_SECONDS)
    counts = {table: (events, ids) for table, events, ids in engine.execute(every_table_sql()).rows}
    return Run(
        scenario=scenario,
        lake_database=stack.isolated.database,
        lake_bucket=stack.lake,
        counts=counts,
        stats=result.stats,
        drained=result.drained,
        seconds=result.seconds,
        wrapper_counts=Counter(wrappers.COUNTS),
        quarantined=len(stack.keys(stack.quarantine)),
    )


def pipeline_query(sql: str, run: Run, workspace: Workspace) -> list[dict[str, Any]]:
    """``pipeline query SQL --format json`` in a fresh process, as a user runs it."""
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipelines_local.cli",
            "query",
            sql,
            "--workspace",
            workspace.name,
            "--database",
            run.lake_database,
            "--bucket",
            run.lake_bucket,
            "--format",
            "json",
        ],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), "PIPELINE_STATE_DIR": str(workspace.state_dir)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    rows: list[dict[str, Any]] = json.loads(completed.stdout)
    return rows


def _assert_exactly_once(
    run: Run, produced: dict[str, int], workload: list[dict[str, Any]]
) -> None:
    """Drained, nothing given up or quarantined; each event once in the lake."""
    assert run.drained, f"{run.scenario}: not drained after {run.seconds:.1f}s: {run.stats}"
    assert run.stats.records_discarded == 0
    assert run.stats.records_dead_lettered == 0
    assert run.stats.records_expired == 0
    assert run.quarantined == 0
    assert run.counts == {table: (n, n) for table, n in produced.items()}


def test_a_clean_run_lands_every_event_once(
    run_scenario: Callable[[str], Run], produced: dict[str, int], workload: list[dict[str, Any]]
) -> None:
    clean = run_scenario("clean")

    _assert_exactly_once(clean, produced, workload)
    assert clean.stats.batches >= 4  # several batches per shard
    assert clean.stats.function_errors == clean.stats.partial_failures == 0
    assert clean.stats.retries == 0


def test_every_batch_delivered_twice_lands_every_event_once(
    run_scenario: Callable[[str], Run], produced: dict[str, int], workload: list[dict[str, Any]]
) -> None:
    twice = run_scenario("delivered_twice")

    _assert_exactly_once(twice, produced, workload)
    assert twice.stats.batches > 0
    assert twice.wrapper_counts["invocations"] == 2 * twice.stats.batches


def test_a_function_crashing_between_two_tables_commits_lands_every_event_once(
    run_scenario: Callable[[str], Run], produced: dict[str, int], workload: list[dict[str, Any]]
) -> None:
    crashed = run_scenario("crash_midway")

    _assert_exactly_once(crashed, produced, workload)
    assert crashed.wrapper_counts["crashes"] > 0
    assert crashed.wrapper_counts["commits_before_crash"] > 0
    assert crashed.stats.function_errors == crashed.wrapper_counts["crashes"]
    assert crashed.stats.retries >= crashed.wrapper_counts["crashes"]
    assert crashed.stats.bisections == 0


def test_a_retry_over_a_longer_range_than_was_committed_lands_every_event_once(
    run_scenario: Callable[[str], Run],
    produced: dict[str, int],
    workload: list[dict[str, Any]],
    deployed: DeployedStack,
) -> None:
    longer = run_scenario("longer_retry")  # and asked through `pipeline query`, as users do

    _assert_exactly_once(longer, produced, workload)
    assert longer.wrapper_counts["crashes"] > 0
    assert longer.stats.function_errors == longer.wrapper_counts["crashes"]

    rows = pipeline_query(every_table_sql(), longer, deployed.workspace)
    assert {row["tbl"]: (row["events"], row["ids"]) for row in rows} == {
        table: (n, n) for table, n in produced.items()
    }


def test_a_retry_over_shorter_ranges_than_were_committed_lands_every_event_once(
    run_scenario: Callable[[str], Run], produced: dict[str, int], workload: list[dict[str, Any]]
) -> None:
    shorter = run_scenario("shorter_retry")

    _assert_exactly_once(shorter, produced, workload)
    assert shorter.wrapper_counts["crashes"] > 0
    assert shorter.wrapper_counts["halves"] >= shorter.wrapper_counts["crashes"]


def test_s3_write_failures_part_way_through_batches_land_every_event_once(
    run_scenario: Callable[[str], Run], produced: dict[str, int], workload: list[dict[str, Any]]
) -> None:
    faulty = run_scenario("s3_faults")

    _assert_exactly_once(faulty, produced, workload)
    assert faulty.wrapper_counts["s3_faults"] > 0
    assert faulty.wrapper_counts["failed_batches"] == faulty.wrapper_counts["s3_faults"]
    assert faulty.stats.partial_failures == faulty.wrapper_counts["failed_batches"]
    assert faulty.stats.retries >= faulty.wrapper_counts["failed_batches"]
    assert faulty.stats.function_errors == 0


@pytest.mark.parametrize("scenario", ["produced_twice", "reput_20pct"])
def test_events_put_again_at_new_sequence_numbers_land_once(
    run_scenario: Callable[[str], Run],
    produced: dict[str, int],
    workload: list[dict[str, Any]],
    deployed: DeployedStack,
    scenario: str,
) -> None:
    again = run_scenario(scenario)

    _assert_exactly_once(again, produced, workload)
    assert again.stats.retries == 0  # nothing failed: the copies were dropped in the commits

    rows = pipeline_query(every_table_sql(), again, deployed.workspace)
    assert {row["tbl"]: (row["events"], row["ids"]) for row in rows} == {
        table: (n, n) for table, n in produced.items()
    }
