"""The lake compactor against the embedded emulator: Iceberg tables in Glue, files in S3."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from functions.lake_compactor import handler
from pipelines.adapters.stored_files import S3Files, normalized_uri
from pipelines.consumers.lake import Compactor, LakeCatalog, LakeTables, Retention, glue_catalog
from pipelines.consumers.lake.compaction import partition_files
from pipelines.consumers.lake.retention import referenced_files, table_folders
from tests.stack import DeployedStack
from tests.unit.test_lake_compaction import TYPE, Writer, event_ids, transactions

pytestmark = [pytest.mark.integration, pytest.mark.needs("glue")]


@pytest.fixture
def isolated(
    deployed: DeployedStack, deployed_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> Any:
    """The compactor's environment as Terraform set it, on copies of the lake bucket and the
    Glue database."""
    isolated = deployed.isolated("lake-compactor")
    for name, value in isolated.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    handler.compactor_for.cache_clear()
    return isolated


@pytest.fixture
def lake(isolated: Any, deployed: DeployedStack) -> LakeCatalog:
    env = deployed.workspace.env()
    catalog = glue_catalog(
        env["AWS_REGION"],
        deployed.workspace.endpoint_url,
        access_key=env["AWS_ACCESS_KEY_ID"],
        secret_key=env["AWS_SECRET_ACCESS_KEY"],
    )
    return LakeCatalog(catalog, isolated.database, isolated.buckets["lake"], LakeTables())


@pytest.fixture
def events(lake: LakeCatalog) -> list[dict[str, Any]]:
    events = transactions()
    Writer(lake).commit(events)
    return events


def test_the_scheduled_run_compacts_every_closed_partition_to_one_file(
    lake: LakeCatalog, events: list[dict[str, Any]], deployed: DeployedStack
) -> None:
    before = partition_files(lake.table(TYPE))
    assert all(files.files > 1 for files in before.values())

    response = json.loads(
        json.dumps(handler.lambda_handler({}, deployed.context("lake-compactor")))
    )

    (report,) = response["tables"]  # the other event types have no table yet
    assert report["table"] == ".".join(lake.identifier(TYPE))
    assert {p["dt"] for p in report["partitions"]} == set(before)  # every day is closed now
    assert all(p["files_after"] == 1 for p in report["partitions"])
    assert event_ids(lake.table(TYPE)) == Counter(e["metadata"]["event_id"] for e in events)


def test_expiry_and_orphan_removal_on_s3_keep_every_referenced_object(
    lake: LakeCatalog, events: list[dict[str, Any]], deployed: DeployedStack
) -> None:
    s3 = deployed.client("s3")
    files = S3Files(s3)
    replaced = {p for f in partition_files(lake.table(TYPE)).values() for p in f.sequence_numbers}
    Compactor(lake.catalog, files=lambda _: files).run(lake.identifier(TYPE), expire=False)
    later = datetime.now(UTC) + timedelta(days=30)

    report = Compactor(
        lake.catalog,
        files=lambda _: files,
        clock=lambda: later,
        retention=Retention(snapshots_kept=1),
    ).run(lake.identifier(TYPE))

    table = lake.table(TYPE)
    left = {f.uri for folder in table_folders(table) for f in files.list(folder)}
    assert report.snapshots_expired > 0 and report.orphans.files >= len(replaced)
    assert referenced_files(table) <= left
    assert {normalized_uri(p) for p in replaced}.isdisjoint(left)
    assert event_ids(table) == Counter(e["metadata"]["event_id"] for e in events)
