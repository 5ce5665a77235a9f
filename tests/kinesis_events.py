"""Test helpers: Lambda Kinesis events as AWS documents them, and reading tables back.

The event shape follows the sample in the Lambda developer guide ("Using Lambda
with Kinesis"): ``Records[].kinesis`` with base64 ``data``, ``eventID`` =
``<shard id>:<sequence number>``.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pipelines.consumers.batch import Batch, KinesisBatchKernel
from pipelines.consumers.config import TableNames
from pipelines.contract.codec import encode_event
from pipelines.stream.aggregation import Aggregator

SHARD_ID = "shardId-000000000006"
STREAM_ARN = "arn:aws:kinesis:us-east-1:123456789012:stream/lambda-stream"

TABLES = TableNames(
    users="test-users",
    user_activities="test-user-activities",
    system_metrics="test-system-metrics",
    transactions="test-transactions",
    image_analysis="test-image-analysis",
)
BUCKET = "test-quarantine"


def settings_env() -> dict[str, str]:
    """The environment variables Terraform sets on the projector function."""
    return {
        "USERS_TABLE": TABLES.users,
        "USER_ACTIVITIES_TABLE": TABLES.user_activities,
        "SYSTEM_METRICS_TABLE": TABLES.system_metrics,
        "TRANSACTIONS_TABLE": TABLES.transactions,
        "IMAGE_ANALYSIS_TABLE": TABLES.image_analysis,
        "QUARANTINE_BUCKET": BUCKET,
        "FACT_TTL_DAYS": "30",
        "POWERTOOLS_SERVICE_NAME": "projector",
        "POWERTOOLS_METRICS_NAMESPACE": "PipelinesTest",
        "WRITE_MAX_ATTEMPTS": "3",
        "WRITE_BACKOFF_BASE_MS": "1",
        "WRITE_BACKOFF_MAX_MS": "2",
    }


def table_contents(dynamodb: Any, tables: Mapping[str, str]) -> dict[str, list[dict[str, Any]]]:
    """Every item of every table of ``tables`` (kind -> name), by kind, in a stable order."""
    out = {}
    for kind, name in tables.items():
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"TableName": name}
        while True:
            page = dynamodb.scan(**kwargs)
            items.extend(page["Items"])
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        out[kind] = sorted(items, key=repr)
    return out


def sequence_number(n: int) -> str:
    return f"4959033827149025660855969253836157109592157598913658{n:04d}"


def kinesis_record(
    data: bytes, partition_key: str, n: int, *, shard_id: str = SHARD_ID
) -> dict[str, Any]:
    """One element of a Lambda Kinesis event's ``Records``."""
    seq = sequence_number(n)
    return {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": partition_key,
            "sequenceNumber": seq,
            "data": base64.b64encode(data).decode(),
            "approximateArrivalTimestamp": 1545084650.987 + n,
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": f"{shard_id}:{seq}",
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": "arn:aws:iam::123456789012:role/lambda-role",
        "awsRegion": "us-east-1",
        "eventSourceARN": STREAM_ARN,
    }


def key_of(event: dict[str, Any]) -> str:
    key: str = event["metadata"]["aggregate_id"]
    return key


def plain_records(events: Iterable[dict[str, Any]], first: int = 1) -> list[dict[str, Any]]:
    """One Kinesis record per event."""
    return [
        kinesis_record(encode_event(e), key_of(e), n) for n, e in enumerate(events, start=first)
    ]


def aggregated_record(
    items: Sequence[tuple[str, bytes]] | Sequence[dict[str, Any]], n: int
) -> dict[str, Any]:
    """One KPL aggregate holding events (or ``(partition key, bytes)`` pairs)."""
    agg = Aggregator()
    first_key = None
    for item in items:
        key, data = (key_of(item), encode_event(item)) if isinstance(item, dict) else item
        first_key = first_key or key
        if not agg.add(key, data):
            raise ValueError("too much for one aggregate")
    return kinesis_record(agg.seal(), first_key or "", n)


def kinesis_event(records: list[dict[str, Any]]) -> dict[str, Any]:
    return {"Records": records}


class _NoConsumer:
    metric_names: tuple[str, ...] = ()

    def consume(self, batch: Any) -> None:
        return None


def decoded_batch(records: list[dict[str, Any]]) -> Batch:
    """``records`` as the batch kernel hands them to a consumer (decoded; no I/O)."""
    return KinesisBatchKernel(_NoConsumer(), quarantine=None).decode_batch(records)  # type: ignore[arg-type]
