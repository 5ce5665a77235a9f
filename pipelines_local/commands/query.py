"""``pipeline query``: Athena SQL over a workspace's lake, locally on DuckDB or on Athena."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from pipelines_local.query import (
    FORMATS,
    NAMED_QUERIES,
    AthenaEngine,
    LocalEngine,
    QueryEngine,
    QueryError,
    format_result,
    named_query,
)
from pipelines_local.workspace import DEFAULT_WORKSPACE, Workspace


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "query",
        help="run Athena SQL over the lake (DuckDB on the emulator, Athena on AWS)",
        description="Runs Athena (Trino-dialect) SQL over the workspace's lake: one table per "
        "event type, named in snake case (transaction_recorded, metric_recorded, ...), with the "
        "dt partition as a yyyy-MM-dd string. --engine local transpiles the SQL to DuckDB and "
        "scans the Iceberg tables of the workspace's Glue database, answers SHOW TABLES, SHOW "
        "COLUMNS, SHOW PARTITIONS, DESCRIBE and the like from their catalog, and refuses "
        "statements that write (docs/query.md); --engine athena runs it in the workspace's "
        "Athena workgroup.",
    )
    parser.add_argument("sql", nargs="?", help="the SQL; '-' reads it from standard input")
    parser.add_argument(
        "--named",
        choices=sorted(NAMED_QUERIES),
        help="run a named query Terraform ships to the workgroup instead of SQL",
    )
    parser.add_argument("--workspace", default=DEFAULT_WORKSPACE, help="(default: %(default)s)")
    parser.add_argument(
        "--engine", choices=("local", "athena"), default="local", help="(default: %(default)s)"
    )
    parser.add_argument("--format", choices=FORMATS, default="table", help="(default: table)")
    parser.add_argument(
        "--endpoint",
        metavar="URL",
        help="AWS-compatible endpoint for --engine local (default: the emulator `pipeline up` "
        "started, else AWS_ENDPOINT_URL)",
    )
    parser.add_argument(
        "--bucket",
        help="lake bucket of new tables (default: the workspace's, as Terraform output it)",
    )
    parser.add_argument("--database", help="Glue database (default: the workspace's)")
    parser.add_argument("--workgroup", help="Athena workgroup (default: the workspace's)")
    parser.set_defaults(func=run_query)


def run_query(
    args: argparse.Namespace, stdout: TextIO | None = None, stdin: TextIO | None = None
) -> int:
    sql = _sql_of(args, stdin or sys.stdin)
    engine = _engine(args)
    (stdout or sys.stdout).write(format_result(engine.execute(sql), args.format))
    return 0


def _sql_of(args: argparse.Namespace, stdin: TextIO) -> str:
    if args.named and args.sql:
        raise QueryError("give either SQL or --named, not both")
    if args.named:
        return named_query(args.named)
    if not args.sql:
        raise QueryError("no SQL: give it as an argument, '-' for standard input, or --named")
    sql: str = stdin.read() if args.sql == "-" else args.sql
    if not sql.strip():
        raise QueryError("the SQL is empty")
    return sql


def _engine(args: argparse.Namespace) -> QueryEngine:
    if args.engine == "athena":
        if args.database and args.workgroup:
            return AthenaEngine(args.workgroup, args.database, _athena_client(args.endpoint))
        workspace = Workspace.load(args.workspace, endpoint_url=args.endpoint)
        with _region_required():
            athena = workspace.client("athena")
        return AthenaEngine(
            args.workgroup or workspace.athena_workgroup,
            args.database or workspace.glue_database,
            athena,
        )
    workspace = Workspace.load(args.workspace, endpoint_url=args.endpoint)
    return LocalEngine(workspace.lake_catalog(database=args.database, bucket=args.bucket))


def _athena_client(endpoint_url: str | None) -> Any:
    """An Athena client of the default credential chain, in ``AWS_REGION`` (which, as in the
    AWS CLI, wins over ``AWS_DEFAULT_REGION`` and the profile's region)."""
    import boto3

    session = boto3.session.Session(region_name=os.environ.get("AWS_REGION") or None)
    with _region_required():
        return session.client("athena", endpoint_url=endpoint_url)


@contextmanager
def _region_required() -> Iterator[None]:
    from botocore.exceptions import NoRegionError

    try:
        yield
    except NoRegionError as exc:
        raise QueryError(
            "no AWS region for Athena: set AWS_REGION or AWS_DEFAULT_REGION "
            "(or a region in the AWS profile)"
        ) from exc
