"""``pipeline lake compact`` as an operator runs it: a table of what it did, or JSON."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from pipelines.adapters.stored_files import LocalFiles
from pipelines.consumers.lake import LakeCatalog
from pipelines.consumers.lake.compaction import partition_files
from pipelines.consumers.lake.maintenance import UnknownLakeTableError
from pipelines_local.cli import build_parser
from pipelines_local.commands.lake import compact_lake_tables
from tests.unit.test_lake_compaction import TYPE, Writer, local_lake, transactions


@pytest.fixture
def lake(tmp_path: Path) -> LakeCatalog:
    lake = local_lake(tmp_path)
    Writer(lake).commit(transactions())
    return lake


def run(lake: LakeCatalog, *args: str) -> str:
    parsed = build_parser().parse_args(["lake", "compact", *args])
    out = io.StringIO()
    code = compact_lake_tables(parsed, out, lake=lake, files=lambda _: LocalFiles())
    assert code == 0
    return out.getvalue()


def test_compact_prints_each_partition_it_rewrote_and_a_line_per_table(lake: LakeCatalog) -> None:
    before = partition_files(lake.table(TYPE))

    out = run(lake, "--table", "transaction_recorded", "--before", "2026-11-03")

    lines = out.splitlines()
    assert lines[0].split() == ["table", "dt", "files", "rows", "duplicates", "attempts"]
    for dt in ("2026-11-01", "2026-11-02"):
        (line,) = [x for x in lines if f" {dt} " in x]
        files = f"{before[dt].files} -> 1"
        assert line.split()[:1] == ["lake.transaction_recorded"] and files in line
    assert "lake.transaction_recorded: 2 partitions compacted" in out
    assert "2026-11-03" not in out


def test_compact_json_is_one_report_per_table(lake: LakeCatalog) -> None:
    out = run(lake, "--table", "TransactionRecorded", "--before", "2026-11-03", "--json")

    (report,) = json.loads(out)
    assert report["table"] == "lake.transaction_recorded"
    assert [p["dt"] for p in report["partitions"]] == ["2026-11-01", "2026-11-02"]
    assert all(p["files_after"] == 1 and p["duplicates_removed"] == 0 for p in report["partitions"])
    assert report["snapshots_expired"] == 0 and report["orphans"] == {"files": 0, "bytes": 0}


def test_every_table_of_the_lake_is_compacted_when_none_is_named(lake: LakeCatalog) -> None:
    reports: list[dict[str, Any]] = json.loads(run(lake, "--before", "2026-11-03", "--json"))

    # Only the tables that exist: the others have not been written yet.
    assert [r["table"] for r in reports] == ["lake.transaction_recorded"]


def test_an_unknown_table_is_named_with_the_known_ones(lake: LakeCatalog) -> None:
    with pytest.raises(UnknownLakeTableError, match="transaction_recorded"):
        run(lake, "--table", "transactions")


@pytest.mark.parametrize("bad", [["--before", "yesterday"], ["--keep-snapshots", "0"]])
def test_malformed_options_are_usage_errors(bad: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["lake", "compact", *bad])
    assert exit_.value.code == 2
