"""Rebuild the read models from the archive into shadow tables, diff them, promote or discard.

``pipeline replay --target projections --execute`` is the blue/green rebuild of Marten and
Ecotone, on DynamoDB:

1. **cut**: the live projector's checkpoints, per shard, taken when the rebuild starts (the
   local runtime's, on the embedded target); the rebuild applies the archived events at or
   before them, so the shadow holds what the live tables should hold. Where no checkpoint
   can be read (a Lambda event source mapping on AWS does not expose its position) the cut
   is what the archive holds when the rebuild starts, and the diff also shows what the live
   projector had not yet applied;
2. **shadow tables**: for each projection, ``<table>-<replay id>`` beside ``<table>``, made
   like it (keys, indexes, encryption key, time to live, point-in-time recovery) and tagged
   with the replay id. Terraform does not own them: the command creates and drops them, and
   IAM lets it (and the projector) touch only tables named ``<prefix>-<projection>-rp-*``
   (``terraform/replay.tf``);
3. **rebuild in-process**: the archived events, in archive order (per shard, sequence and
   sub-sequence), go through the projector's own code (the batch kernel and
   :class:`~pipelines.consumers.projector.projector.Projector`) with the function's own
   settings but the shadow tables. There is no stream and there are no side effects: no
   alerts, no lake, no archive; what the projector would quarantine is counted and reported,
   not written to the quarantine bucket. A crash or Ctrl-C resumes from the checkpoint of
   (object, offset); every write is idempotent, so rebuilding twice equals rebuilding once;
4. **diff** shadow against live: item counts, a digest of every item (SHA-256 of its
   canonical JSON) by key, the items only in one, the items that differ, and a sample of
   differences with the first differing attribute;
5. ``pipeline replay promote ID`` switches the projector's table configuration (its
   ``<PROJECTION>_TABLE`` variables) to the shadow tables, and records the switch in
   ``<state dir>/projections/<workspace>.tfvars.json`` (the ``projection_tables`` variable),
   which ``pipeline up`` passes to Terraform so that an apply keeps it. ``pipeline replay
   discard ID`` drops the shadow tables.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from pipelines.adapters.dynamo import DynamoWriter
from pipelines.consumers.batch import KinesisBatchKernel
from pipelines.consumers.config import ProjectorSettings
from pipelines.consumers.projector.projections import Projections
from pipelines.consumers.projector.projector import Projector
from pipelines.contract.codec import Codec
from pipelines.errors import PoisonRecordError
from pipelines.stream.records import UserRecord
from pipelines_local.replay import (
    ReplayError,
    ReplayRecord,
    ReplayStore,
    Selected,
    Selection,
    advance,
    list_objects,
    read_selected,
    stop_if_cancelled,
    tracked,
)
from pipelines_local.workspace import Workspace, promoted_tfvars_path

_log = logging.getLogger(__name__)

PROJECTIONS = ("users", "user_activities", "system_metrics", "transactions", "image_analysis")
SHADOW_TAG = "pipelines:replay-id"
_BATCH = 500  # archived events per projector batch: the checkpoint's granularity
_ATTEMPTS = 5  # a batch whose writes did not all land is applied again (idempotent)
_SAMPLE = 100  # differences described per table (the text output shows the first 10)


def variable_of(projection: str) -> str:
    """The projector's environment variable naming a projection's table."""
    return f"{projection.upper()}_TABLE"


def shadow_name(base_table: str, replay_id: str) -> str:
    """``<table>-<replay id>``: the only shape of name IAM lets a rebuild create."""
    return f"{base_table}-{replay_id}"


def base_table(table: str) -> str:
    """The table a name is the shadow of (itself if it is no shadow)."""
    head, sep, _ = table.partition("-rp-")
    return head if sep else table


# --- the cut ----------------------------------------------------------------------------------


def projector_checkpoints(checkpoint_path: Path, function_name: str) -> dict[str, int] | None:
    """The local runtime's settled sequence number per shard of ``function_name``'s mapping.

    None when there is no checkpoint file (the functions run in Lambda, not locally).
    """
    if not checkpoint_path.is_file():
        return None
    data = json.loads(checkpoint_path.read_text())
    cut: dict[str, int] = {}
    for mapping in data.get("mappings", {}).values():
        if mapping.get("function") == function_name:
            for shard, sequence in mapping.get("shards", {}).items():
                cut[shard] = max(cut.get(shard, 0), int(sequence))
    return cut


def within_cut(item: Selected, cut: dict[str, int] | None) -> bool:
    if cut is None:
        return True
    settled = cut.get(item.entry.record.shard_id or "")
    return settled is not None and int(item.entry.record.sequence_number) <= settled


# --- shadow tables ----------------------------------------------------------------------------


def create_shadow(dynamodb: Any, live: str, shadow: str, replay_id: str) -> None:
    """``shadow`` made like ``live``: keys, indexes, billing, encryption, TTL, recovery."""
    try:
        dynamodb.describe_table(TableName=shadow)
        return  # a resumed rebuild: it exists already
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceNotFoundException":
            raise
    table = dynamodb.describe_table(TableName=live)["Table"]
    request: dict[str, Any] = {
        "TableName": shadow,
        "KeySchema": table["KeySchema"],
        "AttributeDefinitions": table["AttributeDefinitions"],
        "BillingMode": "PAY_PER_REQUEST",
        "Tags": [
            {"Key": SHADOW_TAG, "Value": replay_id},
            {"Key": "pipelines:shadow-of", "Value": live},
        ],
    }
    indexes = [
        {"IndexName": i["IndexName"], "KeySchema": i["KeySchema"], "Projection": i["Projection"]}
        for i in table.get("GlobalSecondaryIndexes", [])
    ]
    if indexes:
        request["GlobalSecondaryIndexes"] = indexes
    sse = table.get("SSEDescription") or {}
    if sse.get("KMSMasterKeyArn"):
        request["SSESpecification"] = {
            "Enabled": True,
            "SSEType": "KMS",
            "KMSMasterKeyId": sse["KMSMasterKeyArn"],
        }
    dynamodb.create_table(**request)
    dynamodb.get_waiter("table_exists").wait(
        TableName=shadow, WaiterConfig={"Delay": 1, "MaxAttempts": 300}
    )
    ttl = dynamodb.describe_time_to_live(TableName=live).get("TimeToLiveDescription", {})
    if ttl.get("TimeToLiveStatus") in ("ENABLED", "ENABLING") and ttl.get("AttributeName"):
        dynamodb.update_time_to_live(
            TableName=shadow,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]},
        )
    dynamodb.update_continuous_backups(
        TableName=shadow,
        PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
    )


def shadow_tables(dynamodb: Any, name_prefix: str) -> list[str]:
    """Every rebuild's shadow table of the workspace: ``<prefix>-<projection>-rp-*``."""
    found: list[str] = []
    for page in dynamodb.get_paginator("list_tables").paginate():
        found.extend(
            t for t in page.get("TableNames", []) if t.startswith(f"{name_prefix}-") and "-rp-" in t
        )
    return sorted(found)


def drop_tables(dynamodb: Any, tables: Sequence[str]) -> list[str]:
    """Delete the tables that exist; the names deleted."""
    dropped = []
    for table in tables:
        try:
            dynamodb.delete_table(TableName=table)
            dropped.append(table)
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ResourceNotFoundException":
                raise
    return dropped


# --- the rebuild ------------------------------------------------------------------------------


class _Counted:
    """The rebuild's quarantine: what the projector would quarantine, counted, not written."""

    def __init__(self) -> None:
        self.reasons: dict[str, int] = {}

    def keep(self, record: UserRecord, error: PoisonRecordError) -> str:
        code = error.code or type(error).__name__
        self.reasons[code] = self.reasons.get(code, 0) + 1
        return f"(not kept: rebuild) {record.shard_id}:{record.sequence_number}"


@dataclass
class RebuildPlan:
    """Where the rebuild reads from and writes to, fixed when it starts."""

    live: dict[str, str]  # projection -> live table
    shadow: dict[str, str]  # projection -> shadow table
    cut: dict[str, int] | None  # shard -> last settled sequence; None: all archived
    environment: dict[str, str]  # the projector function's own environment

    def to_dict(self) -> dict[str, Any]:
        return {
            "live": self.live,
            "shadow": self.shadow,
            "cut": None if self.cut is None else {k: str(v) for k, v in self.cut.items()},
            "environment": self.environment,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RebuildPlan:
        cut = data["cut"]
        return cls(
            live=dict(data["live"]),
            shadow=dict(data["shadow"]),
            cut=None if cut is None else {k: int(v) for k, v in cut.items()},
            environment=dict(data["environment"]),
        )


def start_plan(
    lambda_client: Any,
    function_name: str,
    replay_id: str,
    checkpoint_path: Path | None,
) -> RebuildPlan:
    """The projector's tables and settings now, its shadows' names, and the cut."""
    config = lambda_client.get_function_configuration(FunctionName=function_name)
    environment = dict(config.get("Environment", {}).get("Variables", {}))
    live = {}
    for projection in PROJECTIONS:
        table = environment.get(variable_of(projection))
        if not table:
            raise ReplayError(
                f"function {function_name} has no {variable_of(projection)}: is it the projector?"
            )
        live[projection] = table
    shadow = {p: shadow_name(base_table(t), replay_id) for p, t in live.items()}
    cut = None if checkpoint_path is None else projector_checkpoints(checkpoint_path, function_name)
    return RebuildPlan(live, shadow, cut, environment)


@dataclass
class RebuildResult:
    events: int = 0
    quarantined: dict[str, int] = field(default_factory=dict)
    archive_behind: list[str] = field(default_factory=list)  # shards the archive lags on


def rebuild(
    s3: Any,
    dynamodb: Any,
    *,
    bucket: str,
    prefix: str,
    record: ReplayRecord,
    store: ReplayStore,
    plan: RebuildPlan,
    codec: Codec | None = None,
    progress: Callable[[int], None] | None = None,
) -> RebuildResult:
    """Apply every archived event within the cut to the shadow tables, after the checkpoint.

    The record's state ends ``completed`` (then :func:`diff` compares), ``cancelled`` on
    Ctrl-C or ``cancel``, or ``failed``; ``resume`` continues from the checkpoint.
    """
    codec = codec or Codec()
    selection = Selection.from_dict(record.selection)
    for projection, shadow in plan.shadow.items():
        create_shadow(dynamodb, plan.live[projection], shadow, record.replay_id)
    environment = {
        **plan.environment,
        **{variable_of(p): t for p, t in plan.shadow.items()},
    }
    settings = ProjectorSettings.from_env(environment)
    quarantine = _Counted()
    kernel = KinesisBatchKernel(
        Projector(
            Projections.from_settings(settings),
            DynamoWriter(dynamodb, settings.retry),
            logger=_log,
            write_concurrency=settings.write_concurrency,
        ),
        quarantine,
        logger=_log,
    )
    objects = list_objects(s3, bucket, prefix, selection)
    result = RebuildResult()
    highest: dict[str, int] = {}
    from_start = record.checkpoint is None

    def apply(items: list[Selected]) -> None:
        stop_if_cancelled(record, store)
        records = [_lambda_record(i) for i in items]
        for attempt in range(1, _ATTEMPTS + 1):
            outcome = kernel.process_batch(records)
            failed = [e for e in outcome.errors if e is not None]
            if not failed:
                break
            if attempt == _ATTEMPTS:
                raise failed[0]
            _log.warning("rebuild batch: %d record(s) did not land; applying again", len(failed))
        advance(record, store, items, progress)

    chunk: list[Selected] = []
    with tracked(record, store):
        for item in read_selected(s3, bucket, objects, selection, codec, after=record.checkpoint):
            shard = item.entry.record.shard_id or ""
            highest[shard] = max(highest.get(shard, 0), int(item.entry.record.sequence_number))
            if not within_cut(item, plan.cut):
                continue
            chunk.append(item)
            if len(chunk) >= _BATCH:
                apply(chunk)
                chunk = []
        if chunk:
            apply(chunk)
    result.events = record.replayed_events
    result.quarantined = dict(quarantine.reasons)
    if plan.cut is not None and from_start:  # a resumed rebuild did not read it all
        result.archive_behind = sorted(
            shard for shard, settled in plan.cut.items() if highest.get(shard, -1) < settled
        )
    return result


def _lambda_record(item: Selected) -> dict[str, Any]:
    """The archived record as Lambda hands a Kinesis record to the projector."""
    user = item.entry.record
    return {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": user.partition_key,
            "sequenceNumber": user.sequence_number,
            "data": base64.b64encode(user.data).decode(),
            "approximateArrivalTimestamp": user.approximate_arrival or 0.0,
        },
        "eventSource": "aws:kinesis",
        "eventID": f"{user.shard_id}:{user.sequence_number}",
    }


# --- the diff ---------------------------------------------------------------------------------


def _canonical(item: dict[str, Any]) -> str:
    return json.dumps(item, sort_keys=True, separators=(",", ":"))


def _key_of(item: dict[str, Any], key_names: Sequence[str]) -> str:
    return _canonical({k: item[k] for k in key_names})


def _scan(dynamodb: Any, table: str) -> Iterator[dict[str, Any]]:
    for page in dynamodb.get_paginator("scan").paginate(TableName=table):
        yield from page.get("Items", [])


def _first_difference(
    live: dict[str, Any] | None, shadow: dict[str, Any] | None
) -> tuple[str | None, Any, Any]:
    live, shadow = live or {}, shadow or {}
    for name in sorted(set(live) | set(shadow)):
        if live.get(name) != shadow.get(name):
            return name, live.get(name), shadow.get(name)
    return None, None, None


def diff_table(dynamodb: Any, live: str, shadow: str) -> dict[str, Any]:
    """Counts, per-item digests by key, and a sample of the differences of two tables."""
    key_names = [
        k["AttributeName"] for k in dynamodb.describe_table(TableName=live)["Table"]["KeySchema"]
    ]
    live_digests: dict[str, str] = {}
    for item in _scan(dynamodb, live):
        live_digests[_key_of(item, key_names)] = hashlib.sha256(
            _canonical(item).encode()
        ).hexdigest()
    shadow_count = 0
    only_shadow: list[str] = []
    differing: list[str] = []
    seen: set[str] = set()
    for item in _scan(dynamodb, shadow):
        shadow_count += 1
        key = _key_of(item, key_names)
        seen.add(key)
        digest = hashlib.sha256(_canonical(item).encode()).hexdigest()
        if key not in live_digests:
            only_shadow.append(key)
        elif live_digests[key] != digest:
            differing.append(key)
    only_live = [k for k in live_digests if k not in seen]
    sample: list[dict[str, Any]] = []
    for kind, keys in (
        ("differs", differing),
        ("only_live", only_live),
        ("only_shadow", only_shadow),
    ):
        for key in sorted(keys)[: max(0, _SAMPLE - len(sample))]:
            ddb_key = json.loads(key)
            live_item = dynamodb.get_item(TableName=live, Key=ddb_key, ConsistentRead=True).get(
                "Item"
            )
            shadow_item = dynamodb.get_item(TableName=shadow, Key=ddb_key, ConsistentRead=True).get(
                "Item"
            )
            attribute, live_value, shadow_value = _first_difference(live_item, shadow_item)
            sample.append(
                {
                    "kind": kind,
                    "key": ddb_key,
                    "attribute": attribute,
                    "live": live_value,
                    "shadow": shadow_value,
                }
            )
    return {
        "live_table": live,
        "shadow_table": shadow,
        "live_items": len(live_digests),
        "shadow_items": shadow_count,
        "identical": shadow_count - len(only_shadow) - len(differing),
        "differing": len(differing),
        "only_live": len(only_live),
        "only_shadow": len(only_shadow),
        "sample": sample,
    }


def diff(dynamodb: Any, plan: RebuildPlan) -> dict[str, Any]:
    """Every projection's diff, and whether shadow and live are the same."""
    tables = {p: diff_table(dynamodb, plan.live[p], plan.shadow[p]) for p in plan.shadow}
    same = all(t["differing"] == t["only_live"] == t["only_shadow"] == 0 for t in tables.values())
    return {"same": same, "tables": tables}


def rebuild_projections(
    workspace: Workspace,
    record: ReplayRecord,
    store: ReplayStore,
    *,
    progress: Callable[[int], None] | None = None,
) -> ReplayRecord:
    """Rebuild ``workspace``'s read models into shadow tables (names and cut fixed when the
    rebuild starts, kept in the record for a resume), then diff them with the live ones into
    ``record.result``; the record ends ``completed``."""
    dynamodb = workspace.client("dynamodb")
    if record.rebuild is None:
        record.rebuild = start_plan(
            workspace.client("lambda"),
            workspace.function("projector"),
            record.replay_id,
            workspace.checkpoint_path if workspace.embedded else None,
        ).to_dict()
        store.save(record)
    rebuilt = RebuildPlan.from_dict(record.rebuild)
    outcome = rebuild(
        workspace.client("s3"),
        dynamodb,
        bucket=workspace.bucket("archive"),
        prefix=str(workspace.output("archive_prefix")),
        record=record,
        store=store,
        plan=rebuilt,
        progress=progress,
    )
    record.result = {
        **diff(dynamodb, rebuilt),
        "events_applied": outcome.events,
        "would_quarantine": outcome.quarantined,
        "archive_behind_on": outcome.archive_behind,
        "cut": "the projector's checkpoints" if rebuilt.cut is not None else "the archive",
    }
    record.state = "completed"
    store.save(record)
    return record


# --- promote and discard ------------------------------------------------------------------


def promoted_tables(state_dir: Path, workspace: str) -> dict[str, str]:
    path = promoted_tfvars_path(state_dir, workspace)
    if not path.is_file():
        return {}
    return dict(json.loads(path.read_text()).get("projection_tables", {}))


def promote(
    lambda_client: Any,
    function_name: str,
    plan: RebuildPlan,
    *,
    state_dir: Path,
    workspace: str,
) -> dict[str, str]:
    """Switch the projector to the shadow tables; record it for Terraform. The tables replaced."""
    config = lambda_client.get_function_configuration(FunctionName=function_name)
    variables = dict(config.get("Environment", {}).get("Variables", {}))
    replaced = {p: variables.get(variable_of(p), plan.live[p]) for p in plan.shadow}
    variables.update({variable_of(p): t for p, t in plan.shadow.items()})
    lambda_client.update_function_configuration(
        FunctionName=function_name, Environment={"Variables": variables}
    )
    lambda_client.get_waiter("function_updated_v2").wait(
        FunctionName=function_name, WaiterConfig={"Delay": 1, "MaxAttempts": 120}
    )
    path = promoted_tfvars_path(state_dir, workspace)
    tables = {**promoted_tables(state_dir, workspace), **plan.shadow}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"projection_tables": tables}, indent=2, sort_keys=True) + "\n")
    return replaced


# --- the lake -------------------------------------------------------------------------------

_LAKE_BATCH = 2000  # archived events per lake commit


def rebuild_lake(
    s3: Any,
    lake: Any,
    *,
    bucket: str,
    prefix: str,
    record: ReplayRecord,
    store: ReplayStore,
    event_type: str,
    codec: Codec | None = None,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Append to ``event_type``'s lake table every selected archived event it does not hold.

    Each commit appends only the events whose ``event_id`` the partitions they fall in do not
    hold yet (:meth:`~pipelines.consumers.lake.iceberg.IcebergCommitter.fill`) and leaves the
    lake writer's watermarks alone: rebuilding a partition the lake holds whole appends
    nothing, and rebuilding twice equals rebuilding once. An event the lake cannot hold (the
    writer quarantined it) is counted, not written. Totals go to ``record.result``.
    """
    from pipelines.consumers.lake import IcebergCommitter

    codec = codec or Codec()
    selection = Selection.from_dict(record.selection)
    committer = IcebergCommitter(lake)
    objects = list_objects(s3, bucket, prefix, selection)
    totals = record.result or {
        "table": ".".join(lake.identifier(event_type)),
        "appended": 0,
        "already_held": 0,
        "not_holdable": 0,
        "commits": 0,
    }
    record.result = totals

    def commit(items: list[Selected]) -> None:
        stop_if_cancelled(record, store)
        built = lake.tables.build([i.event for i in items])
        totals["not_holdable"] += len(built.rejected)
        for rows in built.rows:
            done = committer.fill(rows.event_type, rows.table)
            totals["appended"] += done.appended
            totals["already_held"] += done.duplicates
            totals["commits"] += 1 if done.appended else 0
        advance(record, store, items, progress)

    chunk: list[Selected] = []
    with tracked(record, store):
        for item in read_selected(s3, bucket, objects, selection, codec, after=record.checkpoint):
            chunk.append(item)
            if len(chunk) >= _LAKE_BATCH:
                commit(chunk)
                chunk = []
        if chunk:
            commit(chunk)
    record.state = "completed"
    store.save(record)
    return totals
