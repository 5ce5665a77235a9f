"""What a workspace holds and how far behind its consumers are, gathered for ``pipeline status``.

Every function here reads through clients it is given (boto3's, or a pyiceberg catalog) and
returns plain data; :func:`gather_status` puts them together into one JSON-ready document.
Nothing is written anywhere, and nothing is scanned that a summary already counts.

Where each figure comes from:

* **deployed**: the workspace's Terraform outputs, as ``pipeline up`` recorded them;
* **endpoint**: where the workspace is (an embedded emulator, LocalStack, none on AWS) and
  whether it answers an HTTP request within two seconds;
* **stream**: the shards (``ListShards``) and the Kinesis event source mappings of the
  workspace's functions. On an endpoint the functions run in the local runtime, whose
  checkpoints (``<state dir>/runtime/<workspace>/checkpoints.json``) say where each consumer
  is on each shard; the records after a checkpoint are read from the stream (at most
  :data:`READ_LIMIT` per shard and position), so lag is exact: *Kinesis records* behind (an
  aggregated record counts once, whatever number of events it carries) and the age of the
  *oldest unprocessed record* (now minus its approximate arrival). On AWS, Lambda keeps the
  mappings' positions to itself: the lag is the function's ``IteratorAge`` (CloudWatch,
  the latest minute with data in the last :data:`ITERATOR_AGE_WINDOW`), the age of the
  last record read when it was read; records behind and the shards' latest sequence numbers
  are not available;
* **quarantine**: the objects of the quarantine bucket, by consumer (its first key segment);
* **dead letters**: approximate messages on every queue a failure lands in: the functions'
  dead-letter queues (``DeadLetterConfig``), their mappings' on-failure destinations, and
  the uploads queue's redrive target;
* **alerts**: the ``alerts`` table, where the alerter records every alert before it
  publishes it (:mod:`pipelines.adapters.alert_publisher`): how many, how many never marked
  published, and the latest by the time they were recorded;
* **lake**: each Iceberg table's current snapshot summary (rows, data files, bytes), never
  its data;
* **archive**: objects and bytes under the archive prefix.

The document (``version`` 1) is stable: keys are only ever added. A section that cannot be
read (the endpoint does not answer, access is denied) is ``{"error": "<why>"}`` instead of
its object, and the rest is still gathered::

    {"version": 1, "workspace": str, "generated_at": ISO time, "target": "embedded" |
     "endpoint" | "aws", "region": str,
     "endpoint": null | {"url", "embedded", "pid", "answers", "error"},
     "deployed": {"name_prefix", "stream": {"name", "arn"}, "functions", "tables", "buckets",
                  "topics": {key: name}, "glue_database", "archive_prefix"},
     "stream": {"name", "checkpoints": "local-runtime" | "aws", "read_limit", "note",
                "consumers": [{"consumer", "function", "mapping_uuid", "state",
                               "last_processing_result", "records_behind",
                               "records_behind_is_lower_bound", "oldest_unprocessed_arrival",
                               "age_seconds", "age_of"}],
                "shards": [{"shard_id", "open", "parent_shard_id", "latest_sequence_number",
                            "consumers": [{"consumer", "checkpoint", "records_behind",
                                           "records_behind_is_lower_bound",
                                           "oldest_unprocessed_arrival", "age_seconds"}]}]},
     "quarantine": {"bucket", "records", "objects", "by_consumer": {consumer: records},
                    "is_lower_bound"},
     "dead_letters": {"queues": [{"queue", "arn", "for", "kinds", "messages", "in_flight"}],
                      "messages"},
     "alerts": {"table", "recorded", "unpublished", "is_lower_bound",
                "latest": [{"alert_id", "rule", "alert_type", "severity", "subject",
                            "occurred_at", "recorded_at", "published"}]},
     "lake": {"database", "tables": [{"table", "event_type", "created", "rows",
                                      "data_files", "delete_files", "bytes", "snapshots",
                                      "last_commit"}]},
     "archive": {"bucket", "prefix", "objects", "bytes", "is_lower_bound"}}

``age_of`` says what ``age_seconds`` measures: ``"oldest-unprocessed-record"`` (local
runtime; 0 when nothing is behind), ``"iterator-age"`` (AWS), or null when it is unknown.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from pipelines.errors import PipelineError
from pipelines_local.runtime.checkpoints import CheckpointStore

if TYPE_CHECKING:
    from pyiceberg.catalog import Catalog

    from pipelines_local.workspace import Workspace

logger = logging.getLogger(__name__)

STATUS_VERSION = 1
READ_LIMIT = 10_000  # Kinesis records read per shard and position to count a lag
ITERATOR_AGE_WINDOW = timedelta(minutes=10)
_WINDOW_MINUTES = int(ITERATOR_AGE_WINDOW.total_seconds() // 60)
LATEST_ALERTS = 5
ALERT_SCAN_LIMIT = 20_000  # alert items read at most (the table expires them after 90 days)
LIST_PAGE_LIMIT = 1_000  # S3 listing pages (1,000 keys each) counted at most per bucket
PROBE_TIMEOUT_SECONDS = 2.0
LOCAL_RUNTIME = "local-runtime"
AWS = "aws"
OLDEST_UNPROCESSED = "oldest-unprocessed-record"
ITERATOR_AGE = "iterator-age"
_PAGE = 1_000
_EMPTY_PAGES = 5  # empty GetRecords pages behind the tip before giving up on reaching it
_GATHER_ERRORS = (ClientError, BotoCoreError, PipelineError, OSError, ValueError)

Clients = Callable[[str], Any]
Probe = Callable[[str], str | None]


def iso(moment: datetime | float | None) -> str | None:
    """UTC ISO 8601 with seconds and a ``Z`` (epoch seconds or an aware time)."""
    if moment is None:
        return None
    if not isinstance(moment, datetime):
        moment = datetime.fromtimestamp(moment, UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- the endpoint ---------------------------------------------------------------------------

_no_proxy = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def probe_endpoint(url: str, timeout: float = PROBE_TIMEOUT_SECONDS) -> str | None:
    """None when ``url`` answers HTTP (any status), else why not."""
    try:
        with _no_proxy.open(url, timeout=timeout) as response:
            response.read(0)
    except urllib.error.HTTPError:
        return None  # it answered, with an error status: it is there
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return f"no answer from {url}: {reason}"
    return None


def endpoint_status(workspace: Workspace, probe: Probe) -> dict[str, Any] | None:
    """Where the workspace is and whether it answers; None on AWS."""
    if workspace.endpoint_url is None:
        return None
    pid = None
    if workspace.embedded:
        from pipelines_local.infra.stack import running_emulator

        record = running_emulator(workspace.state_dir)
        pid = int(record["pid"]) if record else None
    error = probe(workspace.endpoint_url)
    return {
        "url": workspace.endpoint_url,
        "embedded": workspace.embedded,
        "pid": pid,
        "answers": error is None,
        "error": error,
    }


# --- what is deployed -----------------------------------------------------------------------


def deployed(outputs: Mapping[str, Any]) -> dict[str, Any]:
    """The names Terraform gave the workspace's resources, by their keys."""

    def names(output: str) -> dict[str, str]:
        return {str(k): str(v) for k, v in sorted(dict(outputs.get(output) or {}).items())}

    return {
        "name_prefix": outputs.get("name_prefix"),
        "stream": {"name": outputs.get("stream_name"), "arn": outputs.get("stream_arn")},
        "functions": names("function_names"),
        "tables": names("table_names"),
        "buckets": names("bucket_names"),
        "topics": {k: v.rsplit(":", 1)[-1] for k, v in names("topic_arns").items()},
        "glue_database": outputs.get("glue_database"),
        "archive_prefix": outputs.get("archive_prefix"),
    }


# --- the stream and its consumers -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConsumerMapping:
    """One Kinesis event source mapping of a workspace function."""

    uuid: str
    consumer: str  # the function's key in Terraform (projector, lake-writer)
    function: str
    function_arn: str
    state: str
    starting_position: str
    last_processing_result: str | None = None
    on_failure: str | None = None


def function_name_of(arn: str) -> str:
    parts = arn.split(":")
    return parts[6] if len(parts) >= 7 and parts[5] == "function" else arn


def stream_mappings(
    lambda_client: Any, stream_arn: str, functions: Mapping[str, str]
) -> list[ConsumerMapping]:
    """The mappings of ``stream_arn`` whose functions are ``functions`` (key -> name)."""
    keys = {name: key for key, name in functions.items()}
    found: list[ConsumerMapping] = []
    for page in lambda_client.get_paginator("list_event_source_mappings").paginate():
        for m in page.get("EventSourceMappings", []):
            source = str(m.get("EventSourceArn", "")).split("/consumer/", 1)[0]
            name = function_name_of(str(m.get("FunctionArn", "")))
            if source != stream_arn or name not in keys:
                continue
            destination = ((m.get("DestinationConfig") or {}).get("OnFailure") or {}).get(
                "Destination"
            )
            found.append(
                ConsumerMapping(
                    uuid=str(m["UUID"]),
                    consumer=keys[name],
                    function=name,
                    function_arn=str(m.get("FunctionArn", "")),
                    state=str(m.get("State") or "Enabled"),
                    starting_position=str(m.get("StartingPosition") or "TRIM_HORIZON"),
                    last_processing_result=m.get("LastProcessingResult"),
                    on_failure=destination or None,
                )
            )
    found.sort(key=lambda m: (m.consumer, m.uuid))
    return found


def list_shards(kinesis: Any, stream_name: str) -> list[dict[str, Any]]:
    """Every shard of the stream, open and closed, as ``ListShards`` describes them."""
    shards: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"StreamName": stream_name}
    while True:
        page = kinesis.list_shards(**kwargs)
        shards.extend(page.get("Shards", []))
        token = page.get("NextToken")
        if not token:
            return shards
        kwargs = {"NextToken": token}


@dataclass(frozen=True, slots=True)
class ShardTail:
    """The records of a shard after a position, as far as they were read.

    ``records`` are ``(sequence number, approximate arrival in epoch seconds)`` in stream
    order; ``complete`` says the read reached the shard's tip (or a closed shard's end).
    """

    after: str | None  # the position read after; None: from the trim horizon
    records: tuple[tuple[str, float | None], ...]
    complete: bool

    @property
    def latest(self) -> str | None:
        """The shard's latest sequence number, if the read reached the tip."""
        if not self.complete:
            return None
        return self.records[-1][0] if self.records else self.after


def read_tail(
    kinesis: Any, stream_name: str, shard_id: str, after: str | None, limit: int = READ_LIMIT
) -> ShardTail:
    """The records of ``shard_id`` after sequence number ``after`` (all, for None), at most
    ``limit`` of them; only their coordinates and arrivals are kept."""
    position: dict[str, Any] = (
        {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "StartingSequenceNumber": after}
        if after is not None
        else {"ShardIteratorType": "TRIM_HORIZON"}
    )
    iterator = kinesis.get_shard_iterator(StreamName=stream_name, ShardId=shard_id, **position)[
        "ShardIterator"
    ]
    records: list[tuple[str, float | None]] = []
    empty = 0
    while iterator:
        want = limit - len(records)
        page = kinesis.get_records(ShardIterator=iterator, Limit=max(1, min(_PAGE, want)))
        got = page.get("Records", [])
        if want <= 0:  # the limit is reached: one more record says whether it was the tip
            at_tip = not got and not page.get("MillisBehindLatest")
            return ShardTail(after, tuple(records), complete=at_tip)
        for record in got:
            arrival = record.get("ApproximateArrivalTimestamp")
            records.append(
                (str(record["SequenceNumber"]), arrival.timestamp() if arrival else None)
            )
        iterator = page.get("NextShardIterator")
        if not got:
            if not page.get("MillisBehindLatest"):
                return ShardTail(after, tuple(records), complete=True)
            empty += 1
            if empty >= _EMPTY_PAGES:
                return ShardTail(after, tuple(records), complete=False)
    return ShardTail(after, tuple(records), complete=True)  # a closed shard, read to its end


@dataclass(frozen=True, slots=True)
class Lag:
    """How far a consumer is behind on one shard."""

    records_behind: int | None  # None: unknown (no checkpoint and not reading from the start)
    is_lower_bound: bool = False  # more records may follow those counted
    oldest_arrival: float | None = None  # the oldest unprocessed record's, epoch seconds

    def age_seconds(self, now: float) -> float | None:
        if self.records_behind is None:
            return None
        if self.records_behind == 0:
            return 0.0
        if self.oldest_arrival is None:
            return None
        return max(0.0, round(now - self.oldest_arrival, 3))


def lag_of(tail: ShardTail, checkpoint: str | None) -> Lag:
    """The lag of a consumer whose last settled record is ``checkpoint`` (None: none yet,
    reading from the trim horizon), counted in a tail read from at or before it."""
    start = -1 if checkpoint is None else int(checkpoint)
    behind = [(seq, arrival) for seq, arrival in tail.records if int(seq) > start]
    return Lag(
        records_behind=len(behind),
        is_lower_bound=not tail.complete,
        oldest_arrival=behind[0][1] if behind else None,
    )


def total_lag(lags: Iterable[Lag]) -> Lag:
    """One consumer's lag over every shard."""
    lags = list(lags)
    if any(lag.records_behind is None for lag in lags):
        return Lag(None)
    arrivals = [lag.oldest_arrival for lag in lags if lag.oldest_arrival is not None]
    return Lag(
        records_behind=sum(lag.records_behind or 0 for lag in lags),
        is_lower_bound=any(lag.is_lower_bound for lag in lags),
        oldest_arrival=min(arrivals) if arrivals else None,
    )


def shard_lags(
    kinesis: Any,
    stream_name: str,
    shard_id: str,
    checkpoints: Mapping[str, str | None],
    reads_from_start: Mapping[str, bool],
    limit: int = READ_LIMIT,
) -> tuple[str | None, dict[str, Lag]]:
    """The shard's latest sequence number (None if not reached) and each consumer's lag.

    ``checkpoints`` maps a consumer to its last settled sequence number; one without a
    checkpoint counts everything from the trim horizon if ``reads_from_start`` says so (its
    mapping starts at ``TRIM_HORIZON``), else its lag is unknown. The shard is read from the
    lowest position; a read that reached the tip serves every higher position, one that
    stopped at ``limit`` only its own (each position then counts up to ``limit``).
    """
    wanted = {
        c: p for c, p in checkpoints.items() if p is not None or reads_from_start.get(c, True)
    }
    tails: list[ShardTail] = []

    def tail_for(position: str | None) -> ShardTail:
        start = -1 if position is None else int(position)
        for tail in tails:
            first = -1 if tail.after is None else int(tail.after)
            if first == start or (tail.complete and first <= start):
                return tail
        tail = read_tail(kinesis, stream_name, shard_id, position, limit)
        tails.append(tail)
        return tail

    lags: dict[str, Lag] = {c: Lag(None) for c in checkpoints}
    ordered = sorted(wanted.items(), key=lambda item: -1 if item[1] is None else int(item[1]))
    for consumer, position in ordered:
        lags[consumer] = lag_of(tail_for(position), position)
    if not tails:
        known = [int(p) for p in checkpoints.values() if p is not None]
        tails.append(read_tail(kinesis, stream_name, shard_id, str(max(known)) if known else None))
    reached = [int(t.latest) for t in tails if t.latest is not None]
    return (str(max(reached)) if reached else None), lags


def read_checkpoints(path: Path) -> dict[str, dict[str, str]]:
    """The local runtime's checkpoints: mapping UUID -> shard -> sequence number."""
    if not path.is_file():
        return {}
    mappings = CheckpointStore(path).snapshot().get("mappings", {})
    return {
        str(uuid): {str(s): str(n) for s, n in (entry.get("shards") or {}).items()}
        for uuid, entry in mappings.items()
    }


def iterator_age_seconds(cloudwatch: Any, function: str, now: datetime) -> float | None:
    """The function's latest ``IteratorAge`` (maximum of a minute) within the window."""
    response = cloudwatch.get_metric_statistics(
        Namespace="AWS/Lambda",
        MetricName="IteratorAge",
        Dimensions=[{"Name": "FunctionName", "Value": function}],
        StartTime=now - ITERATOR_AGE_WINDOW,
        EndTime=now,
        Period=60,
        Statistics=["Maximum"],
    )
    points = sorted(response.get("Datapoints", []), key=lambda p: p["Timestamp"])
    return round(float(points[-1]["Maximum"]) / 1000, 3) if points else None


def stream_status(
    clients: Clients,
    stream_name: str,
    stream_arn: str,
    mappings: list[ConsumerMapping],
    *,
    checkpoints: Mapping[str, Mapping[str, str]] | None,
    now: datetime,
    limit: int = READ_LIMIT,
) -> dict[str, Any]:
    """Shards, and each consumer's lag: from ``checkpoints`` (the local runtime's, by
    mapping UUID) when given, else from the mappings' state and CloudWatch (AWS)."""
    kinesis = clients("kinesis")
    shards = list_shards(kinesis, stream_name)
    moment = now.timestamp()
    consumers: list[dict[str, Any]] = []
    shard_docs: list[dict[str, Any]] = []
    base = {
        "name": stream_name,
        "checkpoints": LOCAL_RUNTIME if checkpoints is not None else AWS,
        "read_limit": limit,
    }
    if checkpoints is None:
        cloudwatch = clients("cloudwatch")
        for m in mappings:
            age = iterator_age_seconds(cloudwatch, m.function, now)
            consumers.append(
                _consumer(m, Lag(None), moment) | {"age_seconds": age, "age_of": ITERATOR_AGE}
            )
        for shard in shards:
            shard_docs.append({**_shard(shard), "latest_sequence_number": None, "consumers": []})
        note = (
            "Lambda does not expose its positions on the stream: records behind and latest "
            "sequence numbers are not available; age is IteratorAge from CloudWatch (the "
            f"latest minute with data in the last {_WINDOW_MINUTES} min)"
        )
        return {**base, "note": note, "consumers": consumers, "shards": shard_docs}
    by_consumer: dict[str, list[Lag]] = {m.consumer: [] for m in mappings}
    for shard in shards:
        shard_id = str(shard["ShardId"])
        positions = {m.consumer: checkpoints.get(m.uuid, {}).get(shard_id) for m in mappings}
        from_start = {m.consumer: m.starting_position == "TRIM_HORIZON" for m in mappings}
        latest, lags = shard_lags(kinesis, stream_name, shard_id, positions, from_start, limit)
        entries = []
        for m in mappings:
            lag = lags[m.consumer]
            by_consumer[m.consumer].append(lag)
            entries.append(
                {
                    "consumer": m.consumer,
                    "checkpoint": positions[m.consumer],
                    "records_behind": lag.records_behind,
                    "records_behind_is_lower_bound": lag.is_lower_bound,
                    "oldest_unprocessed_arrival": iso(lag.oldest_arrival),
                    "age_seconds": lag.age_seconds(moment),
                }
            )
        shard_docs.append({**_shard(shard), "latest_sequence_number": latest, "consumers": entries})
    for m in mappings:
        consumers.append(_consumer(m, total_lag(by_consumer[m.consumer]), moment))
    note = (
        "positions are the local runtime's checkpoints; records behind are Kinesis records "
        "(an aggregated record counts once); age is that of the oldest unprocessed record"
    )
    return {**base, "note": note, "consumers": consumers, "shards": shard_docs}


def _shard(shard: Mapping[str, Any]) -> dict[str, Any]:
    ending = (shard.get("SequenceNumberRange") or {}).get("EndingSequenceNumber")
    return {
        "shard_id": str(shard["ShardId"]),
        "open": ending is None,
        "parent_shard_id": shard.get("ParentShardId"),
    }


def _consumer(m: ConsumerMapping, lag: Lag, now: float) -> dict[str, Any]:
    return {
        "consumer": m.consumer,
        "function": m.function,
        "mapping_uuid": m.uuid,
        "state": m.state,
        "last_processing_result": m.last_processing_result,
        "records_behind": lag.records_behind,
        "records_behind_is_lower_bound": lag.is_lower_bound,
        "oldest_unprocessed_arrival": iso(lag.oldest_arrival),
        "age_seconds": lag.age_seconds(now),
        "age_of": OLDEST_UNPROCESSED if lag.records_behind is not None else None,
    }


# --- quarantine, dead letters, archive ------------------------------------------------------


def count_objects(
    s3: Any, bucket: str, prefix: str = "", page_limit: int = LIST_PAGE_LIMIT
) -> tuple[dict[str, tuple[int, int]], bool]:
    """Objects and bytes under ``prefix``, by the first key segment after it; and whether
    the listing stopped at ``page_limit`` pages (the counts are then lower bounds)."""
    counts: dict[str, tuple[int, int]] = {}
    paginator = s3.get_paginator("list_objects_v2")
    for n, page in enumerate(paginator.paginate(Bucket=bucket, Prefix=prefix)):
        if n >= page_limit:
            return counts, True
        for item in page.get("Contents", []):
            head = str(item["Key"])[len(prefix) :].lstrip("/").split("/", 1)[0]
            objects, size = counts.get(head, (0, 0))
            counts[head] = (objects + 1, size + int(item.get("Size", 0)))
    return counts, False


def quarantine_status(s3: Any, bucket: str) -> dict[str, Any]:
    """Quarantined records (their ``.avro`` objects) by consumer, and all objects."""
    by_consumer: dict[str, int] = {}
    objects = 0
    paginator = s3.get_paginator("list_objects_v2")
    lower_bound = False
    for n, page in enumerate(paginator.paginate(Bucket=bucket)):
        if n >= LIST_PAGE_LIMIT:
            lower_bound = True
            break
        for item in page.get("Contents", []):
            key = str(item["Key"])
            objects += 1
            if key.endswith(".avro"):
                consumer = key.split("/", 1)[0]
                by_consumer[consumer] = by_consumer.get(consumer, 0) + 1
    return {
        "bucket": bucket,
        "records": sum(by_consumer.values()),
        "objects": objects,
        "by_consumer": dict(sorted(by_consumer.items())),
        "is_lower_bound": lower_bound,
    }


def archive_status(s3: Any, bucket: str, prefix: str) -> dict[str, Any]:
    base = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
    counts, lower_bound = count_objects(s3, bucket, base)
    return {
        "bucket": bucket,
        "prefix": base,
        "objects": sum(n for n, _ in counts.values()),
        "bytes": sum(b for _, b in counts.values()),
        "is_lower_bound": lower_bound,
    }


def dead_letter_queues(
    lambda_client: Any,
    sqs: Any,
    functions: Mapping[str, str],
    mappings: Iterable[ConsumerMapping],
    *,
    redriven_queue_urls: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Every queue a failure of the workspace lands in, with its approximate messages.

    The functions' own dead-letter queues (asynchronous invocations that failed), their
    Kinesis mappings' on-failure destinations (batches given up on), and the redrive
    targets of ``redriven_queue_urls`` (key -> queue URL, e.g. the uploads queue).
    """
    found: dict[str, dict[str, Any]] = {}

    def add(arn: str, owner: str, kind: str) -> None:
        if ":sqs:" not in arn:
            return  # an SNS or Lambda destination holds nothing to count
        entry = found.setdefault(arn, {"for": [], "kinds": []})
        if owner not in entry["for"]:
            entry["for"].append(owner)
        if kind not in entry["kinds"]:
            entry["kinds"].append(kind)

    for key, name in sorted(functions.items()):
        config = lambda_client.get_function_configuration(FunctionName=name)
        target = (config.get("DeadLetterConfig") or {}).get("TargetArn")
        if target:
            add(str(target), key, "async")
    for m in mappings:
        if m.on_failure:
            add(m.on_failure, m.consumer, "on-failure")
    for key, url in sorted((redriven_queue_urls or {}).items()):
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy"])
        policy = (attributes.get("Attributes") or {}).get("RedrivePolicy")
        if policy:
            add(str(json.loads(policy).get("deadLetterTargetArn", "")), key, "redrive")
    queues = []
    for arn, entry in sorted(found.items(), key=lambda item: item[0].rsplit(":", 1)[-1]):
        name = arn.rsplit(":", 1)[-1]
        url = sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=arn.split(":")[4])
        attributes = sqs.get_queue_attributes(
            QueueUrl=url["QueueUrl"],
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        ).get("Attributes", {})
        queues.append(
            {
                "queue": name,
                "arn": arn,
                "for": entry["for"],
                "kinds": entry["kinds"],
                "messages": int(attributes.get("ApproximateNumberOfMessages", 0)),
                "in_flight": int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)),
            }
        )
    return {"queues": queues, "messages": sum(q["messages"] + q["in_flight"] for q in queues)}


# --- alerts ---------------------------------------------------------------------------------

_ALERT_FIELDS = (
    "alert_id",
    "rule",
    "alert_type",
    "severity",
    "subject",
    "occurred_at",
    "recorded_at",
    "published",
)


def _plain(value: Mapping[str, Any]) -> Any:
    (kind, inner), *_ = value.items()
    if kind == "N":
        return float(inner) if "." in inner else int(inner)
    return inner


def recent_alerts(
    dynamodb: Any, table: str, latest: int = LATEST_ALERTS, limit: int = ALERT_SCAN_LIMIT
) -> dict[str, Any]:
    """How many alerts the table records, how many were never published, the latest ones."""
    names = {f"#f{n}": name for n, name in enumerate(_ALERT_FIELDS)}
    kwargs: dict[str, Any] = {
        "TableName": table,
        "ProjectionExpression": ", ".join(names),
        "ExpressionAttributeNames": names,
    }
    items: list[dict[str, Any]] = []
    lower_bound = False
    while True:
        page = dynamodb.scan(**kwargs)
        items.extend({k: _plain(v) for k, v in item.items()} for item in page.get("Items", []))
        if "LastEvaluatedKey" not in page:
            break
        if len(items) >= limit:
            lower_bound = True
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    items.sort(
        key=lambda i: (int(i.get("recorded_at") or 0), str(i.get("occurred_at") or "")),
        reverse=True,
    )
    newest = []
    for item in items[:latest]:
        entry = {name: item.get(name) for name in _ALERT_FIELDS}
        recorded = item.get("recorded_at")
        entry["recorded_at"] = iso(float(recorded)) if recorded is not None else None
        entry["published"] = bool(item.get("published"))
        newest.append(entry)
    return {
        "table": table,
        "recorded": len(items),
        "unpublished": sum(1 for i in items if not i.get("published")),
        "is_lower_bound": lower_bound,
        "latest": newest,
    }


# --- the lake -------------------------------------------------------------------------------


def lake_status(catalog: Catalog, database: str, tables: Mapping[str, str]) -> dict[str, Any]:
    """Each lake table's current snapshot summary; ``tables`` maps event type -> table."""
    from pyiceberg.exceptions import NoSuchTableError

    docs = []
    for event_type, name in sorted(tables.items(), key=lambda item: item[1]):
        entry: dict[str, Any] = {"table": name, "event_type": event_type, "created": True}
        try:
            table = catalog.load_table((database, name))
        except NoSuchTableError:
            entry.update(dict.fromkeys(("rows", "data_files", "delete_files", "bytes"), 0))
            docs.append({**entry, "created": False, "snapshots": 0, "last_commit": None})
            continue
        snapshot = table.current_snapshot()
        summary = snapshot.summary if snapshot is not None else None

        def total(key: str, summary: Any = summary) -> int:
            value = summary.get(key) if summary is not None else None
            return int(value) if value else 0

        entry.update(
            {
                "rows": total("total-records"),
                "data_files": total("total-data-files"),
                "delete_files": total("total-delete-files"),
                "bytes": total("total-files-size"),
                "snapshots": len(table.metadata.snapshots),
                "last_commit": iso(snapshot.timestamp_ms / 1000) if snapshot else None,
            }
        )
        docs.append(entry)
    return {"database": database, "tables": docs}


# --- everything -----------------------------------------------------------------------------


def lake_table_names(outputs: Mapping[str, Any]) -> dict[str, str]:
    """Event type -> lake table, from the ``lake_tables`` output (or the schemas)."""
    tables = outputs.get("lake_tables")
    if tables:
        return {str(k): str(v["table_name"]) for k, v in dict(tables).items()}
    from pipelines.consumers.lake.schema import table_name
    from pipelines.contract.schemas import default_registry

    return {t: table_name(t) for t in sorted(default_registry().current)}


def _section(name: str, gather: Callable[[], Any]) -> Any:
    try:
        return gather()
    except _GATHER_ERRORS as exc:
        logger.info("status: %s not gathered", name, exc_info=True)
        return {"error": _reason(exc)}


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        operation = getattr(exc, "operation_name", "")
        return f"{operation}: {error.get('Code', '?')}: {error.get('Message', '')}".strip()
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0] if text else type(exc).__name__


def target_of(workspace: Workspace) -> str:
    if workspace.endpoint_url is None:
        return "aws"
    return "embedded" if workspace.embedded else "endpoint"


def gather_status(
    workspace: Workspace,
    *,
    clients: Clients | None = None,
    catalog: Callable[[], Catalog] | None = None,
    probe: Probe = probe_endpoint,
    now: datetime | None = None,
    read_limit: int = READ_LIMIT,
) -> dict[str, Any]:
    """The whole status document of ``workspace`` (shape in the module docstring).

    ``clients`` and ``catalog`` default to the workspace's (boto3 clients and the Glue
    catalog on its endpoint); ``probe`` tells whether the endpoint answers.
    """
    now = now or datetime.now(UTC)
    make = clients or workspace.client
    outputs = workspace.outputs
    functions = {str(k): str(v) for k, v in dict(outputs.get("function_names") or {}).items()}
    endpoint = endpoint_status(workspace, probe)
    doc: dict[str, Any] = {
        "version": STATUS_VERSION,
        "workspace": workspace.name,
        "generated_at": iso(now),
        "target": target_of(workspace),
        "region": workspace.region,
        "endpoint": endpoint,
        "deployed": deployed(outputs),
    }
    sections = ("stream", "quarantine", "dead_letters", "alerts", "lake", "archive")
    if endpoint is not None and not endpoint["answers"]:
        unreachable = {"error": endpoint["error"]}
        return doc | dict.fromkeys(sections, unreachable)
    mappings = _section(
        "mappings",
        lambda: stream_mappings(make("lambda"), workspace.stream_arn, functions),
    )
    if isinstance(mappings, dict):  # the mappings could not be listed
        doc["stream"] = mappings
        mappings = []
    else:
        local = workspace.endpoint_url is not None
        doc["stream"] = _section(
            "stream",
            lambda: stream_status(
                make,
                workspace.stream_name,
                workspace.stream_arn,
                mappings,
                checkpoints=read_checkpoints(workspace.checkpoint_path) if local else None,
                now=now,
                limit=read_limit,
            ),
        )
    redriven = (
        {"uploads": str(outputs["uploads_queue_url"])} if "uploads_queue_url" in outputs else {}
    )
    doc["quarantine"] = _section(
        "quarantine", lambda: quarantine_status(make("s3"), workspace.bucket("quarantine"))
    )
    doc["dead_letters"] = _section(
        "dead letters",
        lambda: dead_letter_queues(
            make("lambda"), make("sqs"), functions, mappings, redriven_queue_urls=redriven
        ),
    )
    doc["alerts"] = _section(
        "alerts", lambda: recent_alerts(make("dynamodb"), workspace.table("alerts"))
    )
    doc["lake"] = _section(
        "lake",
        lambda: lake_status(
            catalog() if catalog else workspace.lake_catalog().catalog,
            workspace.glue_database,
            lake_table_names(outputs),
        ),
    )
    doc["archive"] = _section(
        "archive",
        lambda: archive_status(
            make("s3"), workspace.bucket("archive"), str(outputs.get("archive_prefix") or "")
        ),
    )
    return doc
