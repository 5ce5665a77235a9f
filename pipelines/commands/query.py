"""``pipeline query``: Athena SQL over a workspace's lake, locally on DuckDB or on Athena."""

from __future__ import annotations

import argparse
import sys
from typing import Any, TextIO

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from pipelines.emulator import emulator_env
from pipelines.infra.stack import DEFAULT_WORKSPACE, state_root
from pipelines.query import (
    FORMATS,
    NAMED_QUERIES,
    AthenaEngine,
    LocalEngine,
    QueryEngine,
    QueryError,
    format_result,
    named_query,
)
from pipelines.query.target import LakeTarget, emulator_filesystem
from pipelines.runtime.workspace import resolve_endpoint


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "query",
        help="run Athena SQL over the lake (DuckDB on the emulator, Athena on AWS)",
        description="Runs Athena (Trino-dialect) SQL over the workspace's lake: one table per "
        "event type, named in snake case (transaction_recorded, metric_recorded, ...), with the "
        "dt partition as a yyyy-MM-dd string. --engine local transpiles the SQL to DuckDB and "
        "reads the Parquet objects in the lake bucket; --engine athena runs it in the "
        "workspace's Athena workgroup.",
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
        "--bucket", help="lake bucket (default: pipelines-<workspace>-lake-<account id>)"
    )
    parser.add_argument("--database", help="Glue database (default: pipelines_<workspace>)")
    parser.add_argument("--workgroup", help="Athena workgroup (default: pipelines-<workspace>)")
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
        session = boto3.session.Session()
        athena = session.client("athena", endpoint_url=args.endpoint)
        target = LakeTarget.for_workspace(args.workspace)
        return AthenaEngine(
            args.workgroup or target.workgroup, args.database or target.database, athena
        )
    endpoint = resolve_endpoint(state_root(), args.endpoint)
    env = emulator_env(endpoint)
    bucket = args.bucket
    if bucket is None:
        sts = boto3.client(
            "sts",
            endpoint_url=endpoint,
            region_name=env["AWS_REGION"],
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        )
        bucket = LakeTarget.for_workspace(args.workspace, account_id(sts)).lake_bucket
    filesystem = emulator_filesystem(endpoint, env)
    return LocalEngine(bucket, filesystem)


def account_id(sts: Any) -> str:
    try:
        return str(sts.get_caller_identity()["Account"])
    except (ClientError, BotoCoreError) as exc:
        raise QueryError(f"cannot find the account id (pass --bucket): {exc}") from exc
