"""Athena runs the SQL it is given: on the lake, through the local engine.

moto 5.2.5 does not execute queries: every ``StartQueryExecution`` is ``SUCCEEDED`` at the
next ``GetQueryExecution``, invalid SQL included, and ``GetQueryResults`` answers no rows (or
whatever was queued through ``/moto-api/static/athena/query-results``). With this patch the
emulator's Athena does what Athena does for the statements the local engine answers
(queries, ``SHOW``/``DESCRIBE``; :mod:`pipelines_local.query`):

* ``StartQueryExecution`` returns at once; the query runs in a worker thread of the emulator
  through :class:`~pipelines_local.query.engine.LocalEngine` over the Iceberg tables of the
  execution's database (``QueryExecutionContext.Database``, else ``default``), read from the
  emulator's own Glue and S3. Nothing is created or evolved by a read: a missing table is
  ``TABLE_NOT_FOUND``;
* ``GetQueryExecution`` reports ``QUEUED``/``RUNNING``, then ``SUCCEEDED`` or ``FAILED`` with
  the reason in ``Status.StateChangeReason`` (and ``AthenaError``), the output location, the
  statement type and the engine time; ``StopQueryExecution`` cancels;
* the result goes to the output location as Athena writes it: the workgroup's
  ``ResultConfiguration`` when it enforces it or the request gives none, ``<id>.csv`` for a
  query (a header row, every value double-quoted, a null empty) and ``<id>.txt`` for a
  ``SHOW``/``DESCRIBE`` (tab-separated, no header), each with ``<name>.metadata`` beside it.
  Athena's metadata file is a binary format of its own that clients are not meant to read;
  ours holds the result's ``ColumnInfo`` as JSON;
* ``GetQueryResults`` pages the result (``MaxResults`` up to 1,000, ``NextToken``): a query's
  first page starts with the header row, as Athena's does; values are Athena's text
  (``true``, ``2026-12-01 10:00:00.000 UTC``, ``[a, b]``) and ``ColumnInfo`` carries Athena's
  types; before the query has succeeded it is ``InvalidRequestException``, as on Athena.

Where it still differs from Athena: statements that write (``CREATE TABLE AS``, ``INSERT``,
``DROP TABLE``, ...) fail with the local engine's read-only message instead of running
(``CREATE``/``DROP DATABASE`` keep moto's handling, which Terraform's ``aws_athena_database``
needs); ``DataScannedInBytes`` is 0; the SQL dialect is Trino's as sqlglot reads it.
Results queued through moto's ``/moto-api/static/athena/query-results`` still take
precedence, so tests that script Athena's answers keep working.

The queries reach Glue and S3 over HTTP on the emulator's own port (``MOTO_PORT``, which
the server sets). Where there is none (moto in-process), moto's behaviour is kept.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from moto.athena.models import AthenaBackend, Execution
from moto.athena.responses import AthenaResponse

from pipelines_local.emulator.patches.base import Patch, Patcher

logger = logging.getLogger(__name__)

MAX_RESULTS = 1000  # GetQueryResults' page size limit, and its default
WORKERS = 2
_DDL = re.compile(r"^\s*(CREATE|DROP)\s+(DATABASE|SCHEMA)\b", re.IGNORECASE)
_METADATA = re.compile(r"^\s*(SHOW|DESCRIBE)\b", re.IGNORECASE)
_MISSING_TABLE = re.compile(r"Table with name (\S+) does not exist", re.IGNORECASE)
_NO_OUTPUT = (
    "No output location provided. An output location is required either through the "
    "Workgroup result configuration setting or as an API input."
)

_PRECISION = {"varchar": 2147483647, "bigint": 19, "double": 17}  # as Athena's ColumnInfo

_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


@dataclass
class LocalRun:
    """One execution the emulator runs: its state, and its result once it has one."""

    query: str
    database: str
    output: str | None
    region: str
    metadata_statement: bool
    state: str = "QUEUED"
    reason: str | None = None
    submitted: float = field(default_factory=time.time)
    started: float | None = None
    ended: float | None = None
    columns: list[dict[str, Any]] = field(default_factory=list)
    rows: list[list[str | None]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def finish(self, state: str, reason: str | None = None) -> None:
        with self.lock:
            if self.state == "CANCELLED":
                return
            self.state, self.reason, self.ended = state, reason, time.time()


def _endpoint() -> str | None:
    port = os.environ.get("MOTO_PORT")
    return f"http://127.0.0.1:{port}" if port else None


def _submit(run: LocalRun, endpoint: str) -> None:
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(WORKERS, thread_name_prefix="athena-sql")
        _executor.submit(_execute, run, endpoint)


def _output_location(backend: AthenaBackend, execution: Execution, workgroup: str) -> str | None:
    """Where Athena writes the result: the workgroup's location when it enforces it or the
    request names none, else the request's (moto appended ``<id>.csv`` to that one)."""
    group = backend.work_groups.get(workgroup or "primary")
    configuration = (group.configuration if group is not None else None) or {}
    enforced = bool(configuration.get("EnforceWorkGroupConfiguration"))
    own = (configuration.get("ResultConfiguration") or {}).get("OutputLocation")
    requested = (execution.config or {}).get("OutputLocation")
    if requested and not enforced:
        return str(requested).rsplit("/", 1)[0] + "/"
    if own:
        return str(own) if str(own).endswith("/") else f"{own}/"
    return None


def _execute(run: LocalRun, endpoint: str) -> None:
    with run.lock:
        if run.state == "CANCELLED":
            return
        run.state, run.started = "RUNNING", time.time()
    try:
        if run.output is None:
            run.finish("FAILED", _NO_OUTPUT)
            return
        result = _run_sql(run, endpoint)
        run.columns = [_column_info(name, kind) for name, kind in _typed(result)]
        run.rows = [[_text(value) for value in row] for row in result.rows]
        _write_result(run, endpoint)
    except Exception as exc:  # the reason goes to the caller, as Athena's does
        run.finish("FAILED", _reason(exc))
        return
    run.finish("SUCCEEDED")


def _run_sql(run: LocalRun, endpoint: str) -> Any:
    from pipelines.consumers.lake import LakeCatalog, LakeTables, glue_catalog
    from pipelines_local.query.engine import LocalEngine

    catalog = glue_catalog(run.region, endpoint, access_key="test", secret_key="test")
    lake = LakeCatalog(catalog, run.database, "", LakeTables(), create_missing=False)
    return LocalEngine(lake).execute(run.query)


def _typed(result: Any) -> list[tuple[str, str]]:
    return [(name, result.type_of(index)) for index, name in enumerate(result.columns)]


def _reason(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    missing = _MISSING_TABLE.search(text)
    if missing:
        return f"TABLE_NOT_FOUND: Table '{missing.group(1)}' does not exist"
    return text


def _column_info(name: str, kind: str) -> dict[str, Any]:
    base, precision, scale = kind, _PRECISION.get(kind, 0), 0
    decimal = re.fullmatch(r"decimal\((\d+),(\d+)\)", kind)
    if decimal:
        base, precision, scale = "decimal", int(decimal.group(1)), int(decimal.group(2))
    return {
        "CatalogName": "hive",
        "SchemaName": "",
        "TableName": "",
        "Name": name,
        "Label": name,
        "Type": base,
        "Precision": precision,
        "Scale": scale,
        "Nullable": "UNKNOWN",
        "CaseSensitive": base == "varchar",
    }


def _text(value: Any) -> str | None:
    """A value as Athena prints it in results (``None`` for a null)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            utc = value.astimezone(UTC).replace(tzinfo=None)
            return f"{_timestamp(utc)} UTC"
        return _timestamp(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.hex(" ")
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_inner(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_inner(k)}={_inner(v)}" for k, v in value.items()) + "}"
    return str(value)


def _inner(value: Any) -> str:
    text = _text(value)
    return "null" if text is None else text


def _timestamp(value: datetime) -> str:
    spec = "milliseconds" if value.microsecond % 1000 == 0 else "microseconds"
    return value.isoformat(sep=" ", timespec=spec)


def _write_result(run: LocalRun, endpoint: str) -> None:
    """The result file and its metadata file at the output location, as Athena names them."""
    import boto3

    assert run.output is not None
    bucket, _, key = run.output.removeprefix("s3://").partition("/")
    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=run.region,
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    body = _tsv(run.rows) if run.metadata_statement else _csv(run.columns, run.rows)
    metadata = json.dumps({"ColumnInfo": run.columns}).encode()
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=body)
        s3.put_object(Bucket=bucket, Key=f"{key}.metadata", Body=metadata)
    except Exception as exc:
        raise RuntimeError(
            f"Unable to verify/create output bucket {bucket}: {_reason(exc)}"
        ) from exc


def _csv(columns: Sequence[dict[str, Any]], rows: Sequence[Sequence[str | None]]) -> bytes:
    """A header row, then every value double-quoted; a null left empty and unquoted."""
    header = [column["Name"] for column in columns]
    lines = (",".join("" if v is None else _quoted(v) for v in row) for row in [header, *rows])
    return "".join(f"{line}\n" for line in lines).encode()


def _quoted(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def _tsv(rows: Sequence[Sequence[str | None]]) -> bytes:
    return "".join("\t".join(v or "" for v in row) + "\n" for row in rows).encode()


def _run_of(backend: AthenaBackend, exec_id: str) -> LocalRun | None:
    execution = backend.executions.get(exec_id)
    run = getattr(execution, "local_run", None)
    return run if isinstance(run, LocalRun) else None


def _install_executes_sql(patcher: Patcher) -> None:
    """``StartQueryExecution`` runs the SQL; its state, reason and result are the query's."""
    start = AthenaBackend.start_query_execution
    stop = AthenaBackend.stop_query_execution
    get_execution = AthenaResponse.get_query_execution
    get_results = AthenaResponse.get_query_results

    def start_query_execution(
        self: AthenaBackend,
        query: str,
        context: str,
        config: dict[str, Any],
        workgroup: str,
        execution_parameters: list[str] | None,
    ) -> str:
        scripted = bool(self.query_results_queue)
        exec_id: str = start(self, query, context, config, workgroup, execution_parameters)
        endpoint = _endpoint()
        if scripted or exec_id in self.query_results or endpoint is None or _DDL.match(query):
            return exec_id
        execution = self.executions[exec_id]
        output = _output_location(self, execution, workgroup)
        database = context.get("Database") if isinstance(context, dict) else None
        run = LocalRun(
            query=query,
            database=str(database or "default"),
            output=None,
            region=self.region_name,
            metadata_statement=bool(_METADATA.match(query)),
        )
        if output is not None:
            suffix = "txt" if run.metadata_statement else "csv"
            run.output = f"{output}{exec_id}.{suffix}"
            execution.config = {**(execution.config or {}), "OutputLocation": run.output}
        execution.local_run = run  # type: ignore[attr-defined]
        _submit(run, endpoint)
        return exec_id

    def stop_query_execution(self: AthenaBackend, exec_id: str) -> None:
        stop(self, exec_id)
        run = _run_of(self, exec_id)
        if run is not None:
            with run.lock:
                if run.state in ("QUEUED", "RUNNING"):
                    run.state, run.ended = "CANCELLED", time.time()
                    run.reason = "Query cancelled by user"

    def get_query_execution_response(self: AthenaResponse) -> str:
        body: str = get_execution(self)
        run = _run_of(self.athena_backend, self._get_param("QueryExecutionId"))
        if run is None:
            return body
        answer = json.loads(body)
        execution = answer["QueryExecution"]
        now = run.ended or time.time()
        status: dict[str, Any] = {"State": run.state, "SubmissionDateTime": run.submitted}
        if run.ended is not None:
            status["CompletionDateTime"] = run.ended
        if run.reason is not None:
            status["StateChangeReason"] = run.reason
        if run.state == "FAILED":
            status["AthenaError"] = {
                "ErrorCategory": 2,  # USER: the query itself
                "ErrorType": 1100 if "TABLE_NOT_FOUND" in (run.reason or "") else 1000,
                "Retryable": False,
                "ErrorMessage": run.reason,
            }
        execution["Status"] = status
        execution["StatementType"] = "UTILITY" if run.metadata_statement else "DML"
        engine_ms = int((now - run.started) * 1000) if run.started else 0
        execution["Statistics"] = {
            **execution.get("Statistics", {}),
            "EngineExecutionTimeInMillis": engine_ms,
            "TotalExecutionTimeInMillis": int((now - run.submitted) * 1000),
        }
        return json.dumps(answer)

    def get_query_results_response(self: AthenaResponse) -> tuple[str, dict[str, int]] | str:
        exec_id = self._get_param("QueryExecutionId")
        run = _run_of(self.athena_backend, exec_id)
        if run is None:
            body: str = get_results(self)
            return body
        if run.state in ("QUEUED", "RUNNING"):
            return self.error(f"Query has not yet finished. Current state: {run.state}", 400)
        if run.state != "SUCCEEDED":
            final = f"Query did not finish successfully. Final query state: {run.state}"
            return self.error(final, 400)
        size = self._get_param("MaxResults") or MAX_RESULTS
        if not 1 <= int(size) <= MAX_RESULTS:
            return self.error(f"MaxResults must be between 1 and {MAX_RESULTS}", 400)
        header = [] if run.metadata_statement else [[c["Name"] for c in run.columns]]
        every = header + run.rows
        token = self._get_param("NextToken")
        try:
            offset = int(base64.urlsafe_b64decode(token).decode()) if token else 0
        except ValueError:
            return self.error("NextToken is not valid", 400)
        page = every[offset : offset + int(size)]
        answer: dict[str, Any] = {
            "UpdateCount": 0,
            "ResultSet": {
                "Rows": [{"Data": [_cell(v) for v in row]} for row in page],
                "ResultSetMetadata": {"ColumnInfo": run.columns},
            },
        }
        following = offset + int(size)
        if following < len(every):
            answer["NextToken"] = base64.urlsafe_b64encode(str(following).encode()).decode()
        return json.dumps(answer)

    patcher.replace(AthenaBackend, "start_query_execution", start_query_execution)
    patcher.replace(AthenaBackend, "stop_query_execution", stop_query_execution)
    patcher.replace(AthenaResponse, "get_query_execution", get_query_execution_response)
    patcher.replace(AthenaResponse, "get_query_results", get_query_results_response)


def _cell(value: str | None) -> dict[str, str]:
    return {} if value is None else {"VarCharValue": value}


EXECUTES_SQL = Patch(
    name="athena_executes_sql",
    restores="StartQueryExecution runs the SQL over the lake; bad SQL is FAILED with the "
    "reason; results are written to the output location and paged by GetQueryResults",
    install=_install_executes_sql,
)
