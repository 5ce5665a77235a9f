"""`pipeline status`, `logs` and `alerts` without an emulator: moto in-process, a local lake."""

from __future__ import annotations

import argparse
import io
import json
import re
import zipfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from pipelines.contract.codec import decode_event, encode_event
from pipelines_local.cli import main
from pipelines_local.commands import alerts as alerts_command
from pipelines_local.commands.alerts import AlertTap, at_least, listen, parse_notification
from pipelines_local.commands.logs import (
    follow_file,
    line_time,
    lines_since,
    parse_duration,
    resolve_function,
)
from pipelines_local.commands.status import duration, format_status, size, table
from pipelines_local.runtime.checkpoints import CheckpointStore
from pipelines_local.simulator import simulate
from pipelines_local.status import (
    Lag,
    ShardTail,
    gather_status,
    lag_of,
    read_tail,
    shard_lags,
    total_lag,
)
from pipelines_local.workspace import Workspace
from tests.lake import commit_events, local_lake

REGION = "us-east-1"
PREFIX = "acme-dev"
CONSUMERS = ("alerter", "archiver", "lake-writer", "projector")
SEQ = "49654318745963201358812353495398146484930186962223792130"  # as long as AWS's


# --- lag --------------------------------------------------------------------------------------


def tail(*sequences: int, complete: bool = True, after: str | None = None) -> ShardTail:
    return ShardTail(after, tuple((str(s), 1000.0 + s) for s in sequences), complete)


def test_a_consumer_at_the_tip_is_zero_behind_with_zero_age() -> None:
    lag = lag_of(tail(11, 12, 13, after="10"), "13")
    assert (lag.records_behind, lag.is_lower_bound, lag.age_seconds(5000.0)) == (0, False, 0.0)


def test_lag_counts_the_records_after_the_checkpoint_and_ages_the_oldest_of_them() -> None:
    lag = lag_of(tail(11, 12, 13, 14, after="10"), "12")
    assert lag.records_behind == 2
    assert lag.oldest_arrival == 1013.0
    assert lag.age_seconds(1020.0) == 7.0


def test_without_a_checkpoint_every_record_from_the_trim_horizon_is_behind() -> None:
    assert lag_of(tail(1, 2, 3), None).records_behind == 3


def test_a_read_stopped_at_its_limit_makes_the_count_a_lower_bound() -> None:
    lag = lag_of(tail(11, 12, complete=False, after="10"), "10")
    assert (lag.records_behind, lag.is_lower_bound) == (2, True)


def test_a_consumers_total_lag_sums_its_shards_and_keeps_the_oldest_arrival() -> None:
    total = total_lag([Lag(2, oldest_arrival=50.0), Lag(0), Lag(3, True, 40.0)])
    assert (total.records_behind, total.is_lower_bound, total.oldest_arrival) == (5, True, 40.0)
    assert total_lag([Lag(2), Lag(None)]).records_behind is None


@pytest.fixture
def aws() -> Iterator[Callable[[str], Any]]:
    """Clients of moto in-process (no network)."""
    with mock_aws():
        yield lambda service: boto3.client(service, region_name=REGION)


def test_lags_are_read_from_the_stream_after_each_checkpoint(aws: Callable[[str], Any]) -> None:
    kinesis = aws("kinesis")
    kinesis.create_stream(StreamName="s", ShardCount=1)
    sequences = [
        kinesis.put_record(StreamName="s", Data=b"x", PartitionKey="k")["SequenceNumber"]
        for _ in range(8)
    ]
    shard = "shardId-000000000000"
    checkpoints = {"a": sequences[7], "b": sequences[5], "c": None, "d": sequences[1]}
    starts = {"a": True, "b": True, "c": True, "d": True}

    latest, lags = shard_lags(kinesis, "s", shard, checkpoints, starts, limit=3)

    assert latest == sequences[7]
    assert lags["a"] == Lag(0, False, None)
    assert (lags["b"].records_behind, lags["b"].is_lower_bound) == (2, False)
    assert (lags["c"].records_behind, lags["c"].is_lower_bound) == (3, True)
    assert (lags["d"].records_behind, lags["d"].is_lower_bound) == (3, True)
    assert read_tail(kinesis, "s", shard, sequences[7]).records == ()
    latest, lags = shard_lags(kinesis, "s", shard, {"e": None}, {"e": False})
    assert lags["e"].records_behind is None  # starts at LATEST and never ran: unknown
    assert latest == sequences[7]


# --- the whole document -------------------------------------------------------------------


def _function(aws: Callable[[str], Any], name: str) -> str:
    role = aws("iam").create_role(RoleName=f"{name}-role", AssumeRolePolicyDocument="{}")
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    return None\n")
    return str(
        aws("lambda").create_function(
            FunctionName=name,
            Runtime="python3.11",
            Role=role["Role"]["Arn"],
            Handler="handler.handler",
            Code={"ZipFile": code.getvalue()},
        )["FunctionArn"]
    )


@pytest.fixture
def stack(aws: Callable[[str], Any], tmp_path: Path) -> dict[str, Any]:
    """A workspace's resources in moto: 2 shards with 6 records, 4 mappings, a quarantine,
    dead-letter queues, an alerts table, an archive, and a local lake."""
    kinesis, s3, sqs, dynamodb = aws("kinesis"), aws("s3"), aws("sqs"), aws("dynamodb")
    stream = f"{PREFIX}-events"
    kinesis.create_stream(StreamName=stream, ShardCount=2)
    stream_arn = kinesis.describe_stream(StreamName=stream)["StreamDescription"]["StreamARN"]
    puts = [
        kinesis.put_record(StreamName=stream, Data=b"x", PartitionKey=f"key-{n}") for n in range(6)
    ]
    buckets = {p: f"{PREFIX}-{p}" for p in ("quarantine", "archive", "lake")}
    for bucket in buckets.values():
        s3.create_bucket(Bucket=bucket)
    for key in ("projector/shardId-000000000000/1-0", "lake-writer/shardId-000000000001/2-0"):
        s3.put_object(Bucket=buckets["quarantine"], Key=f"{key}.avro", Body=b"bad")
        s3.put_object(Bucket=buckets["quarantine"], Key=f"{key}.json", Body=b"{}")
    s3.put_object(Bucket=buckets["archive"], Key="events/dt=2026-01-01/hour=00/a.avro", Body=b"1")
    s3.put_object(Bucket=buckets["archive"], Key="events/dt=2026-01-01/hour=01/b.avro", Body=b"22")
    s3.put_object(Bucket=buckets["archive"], Key="elsewhere.txt", Body=b"not archive")
    functions, uuids = {}, {}
    for consumer in CONSUMERS:
        name = f"{PREFIX}-{consumer}"
        _function(aws, name)
        url = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
        mapping = aws("lambda").create_event_source_mapping(
            EventSourceArn=stream_arn,
            FunctionName=name,
            StartingPosition="TRIM_HORIZON",
            DestinationConfig={"OnFailure": {"Destination": arn["Attributes"]["QueueArn"]}},
        )
        functions[consumer], uuids[consumer] = name, mapping["UUID"]
    sqs.send_message(QueueUrl=sqs.get_queue_url(QueueName=f"{PREFIX}-projector-dlq")["QueueUrl"],
                     MessageBody="{}")  # fmt: skip
    alerts_table = f"{PREFIX}-alerts"
    dynamodb.create_table(
        TableName=alerts_table,
        KeySchema=[{"AttributeName": "alert_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "alert_id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    for n, (rule, severity) in enumerate([("fraud_amount", "high"), ("cpu_usage", "low")]):
        dynamodb.put_item(
            TableName=alerts_table,
            Item={
                "alert_id": {"S": f"{rule}#e{n}"},
                "rule": {"S": rule},
                "alert_type": {"S": "fraud_alert"},
                "severity": {"S": severity},
                "subject": {"S": f"user-{n}"},
                "occurred_at": {"S": "2026-01-01T00:00:00.000Z"},
                "recorded_at": {"N": str(1_800_000_000 + n)},
                "published": {"BOOL": n == 0},
            },
        )
    lake = local_lake(tmp_path / "lake")
    events = [decode_event(encode_event(e)) for e in simulate(60, seed=3).events]
    commit_events(lake, events, batch=30)
    outputs = {
        "name_prefix": PREFIX,
        "region": REGION,
        "stream_name": stream,
        "stream_arn": stream_arn,
        "bucket_names": buckets,
        "table_names": {"alerts": alerts_table, "users": f"{PREFIX}-users"},
        "function_names": functions,
        "topic_arns": {"fraud_alerts": f"arn:aws:sns:{REGION}:123456789012:{PREFIX}-fraud"},
        "glue_database": "lake",
        "archive_prefix": "events",
    }
    workspace = Workspace("dev", "http://127.0.0.1:9", REGION, outputs, state_dir=tmp_path)
    return {
        "workspace": workspace,
        "puts": puts,
        "uuids": uuids,
        "lake": lake,
        "events": events,
        "clients": aws,
    }


def _status(stack: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    return gather_status(
        stack["workspace"],
        clients=stack["clients"],
        catalog=lambda: stack["lake"].catalog,
        probe=lambda url: None,
        now=datetime.now(UTC) + timedelta(seconds=30),
        **kwargs,
    )


def _settle(stack: dict[str, Any], consumers: tuple[str, ...] = CONSUMERS) -> None:
    """Checkpoint ``consumers`` at the last record of every shard, as the runtime would."""
    store = CheckpointStore(stack["workspace"].checkpoint_path)
    last: dict[str, str] = {}
    for put in stack["puts"]:
        last[put["ShardId"]] = max(last.get(put["ShardId"], "0"), put["SequenceNumber"], key=int)
    for consumer in consumers:
        for shard, sequence in last.items():
            store.put(stack["uuids"][consumer], shard, sequence, function=consumer)


SECTIONS = {"stream", "quarantine", "dead_letters", "alerts", "lake", "archive"}


def test_the_document_has_its_documented_shape(stack: dict[str, Any]) -> None:
    doc = json.loads(json.dumps(_status(stack)))

    assert (
        set(doc)
        == {
            "version",
            "workspace",
            "generated_at",
            "target",
            "region",
            "endpoint",
            "deployed",
        }
        | SECTIONS
    )
    assert (doc["version"], doc["workspace"], doc["target"]) == (1, "dev", "endpoint")
    assert doc["endpoint"] == {
        "url": "http://127.0.0.1:9",
        "embedded": False,
        "pid": None,
        "answers": True,
        "error": None,
    }
    assert doc["deployed"]["functions"]["projector"] == f"{PREFIX}-projector"
    assert doc["deployed"]["topics"] == {"fraud_alerts": f"{PREFIX}-fraud"}
    stream = doc["stream"]
    assert set(stream) == {"name", "checkpoints", "read_limit", "note", "consumers", "shards"}
    assert stream["checkpoints"] == "local-runtime"
    assert [c["consumer"] for c in stream["consumers"]] == list(CONSUMERS)
    assert set(stream["consumers"][0]) == {
        "consumer",
        "function",
        "mapping_uuid",
        "state",
        "last_processing_result",
        "records_behind",
        "records_behind_is_lower_bound",
        "oldest_unprocessed_arrival",
        "age_seconds",
        "age_of",
    }
    assert [s["shard_id"] for s in stream["shards"]] == [
        "shardId-000000000000",
        "shardId-000000000001",
    ]
    assert set(stream["shards"][0]) == {
        "shard_id",
        "open",
        "parent_shard_id",
        "latest_sequence_number",
        "consumers",
    }
    assert doc["quarantine"]["records"] == 2 and doc["quarantine"]["objects"] == 4
    assert doc["quarantine"]["by_consumer"] == {"lake-writer": 1, "projector": 1}
    queues = {q["queue"]: q for q in doc["dead_letters"]["queues"]}
    assert set(queues) == {f"{PREFIX}-{c}-dlq" for c in CONSUMERS}
    assert queues[f"{PREFIX}-projector-dlq"]["messages"] == 1
    assert queues[f"{PREFIX}-projector-dlq"]["kinds"] == ["on-failure"]
    assert doc["dead_letters"]["messages"] == 1
    assert doc["alerts"]["recorded"] == 2 and doc["alerts"]["unpublished"] == 1
    assert [a["rule"] for a in doc["alerts"]["latest"]] == ["cpu_usage", "fraud_amount"]
    assert doc["archive"] == {
        "bucket": f"{PREFIX}-archive",
        "prefix": "events/",
        "objects": 2,
        "bytes": 3,
        "is_lower_bound": False,
    }
    by_table = {t["table"]: t for t in doc["lake"]["tables"]}
    metrics = sum(1 for e in stack["events"] if e.event_type == "MetricRecorded")
    assert by_table["metric_recorded"]["rows"] == metrics
    assert by_table["metric_recorded"]["data_files"] >= 1
    assert by_table["metric_recorded"]["last_commit"].endswith("Z")


def test_before_any_run_every_consumer_is_behind_by_every_record(stack: dict[str, Any]) -> None:
    doc = _status(stack)

    for consumer in doc["stream"]["consumers"]:
        assert consumer["records_behind"] == 6
        assert consumer["age_of"] == "oldest-unprocessed-record"
        assert consumer["age_seconds"] >= 30
    latest = {p["ShardId"]: p["SequenceNumber"] for p in stack["puts"]}  # the last put wins
    assert {s["shard_id"]: s["latest_sequence_number"] for s in doc["stream"]["shards"]} == {
        shard: max((p["SequenceNumber"] for p in stack["puts"] if p["ShardId"] == shard), key=int)
        for shard in latest
    }


def test_settled_consumers_are_zero_behind_and_the_rest_still_lag(stack: dict[str, Any]) -> None:
    _settle(stack, ("alerter", "archiver", "projector"))

    consumers = {c["consumer"]: c for c in _status(stack)["stream"]["consumers"]}

    assert {k: c["records_behind"] for k, c in consumers.items()} == {
        "alerter": 0,
        "archiver": 0,
        "lake-writer": 6,
        "projector": 0,
    }
    assert consumers["projector"]["age_seconds"] == 0.0
    assert consumers["projector"]["oldest_unprocessed_arrival"] is None
    assert consumers["lake-writer"]["oldest_unprocessed_arrival"] is not None


def test_a_section_that_cannot_be_read_says_why_and_the_rest_is_still_there(
    stack: dict[str, Any],
) -> None:
    outputs = {**stack["workspace"].outputs, "bucket_names": {"quarantine": "no-such-bucket"}}
    state = stack["workspace"].state_dir
    workspace = Workspace("dev", "http://127.0.0.1:9", REGION, outputs, state_dir=state)

    doc = _status({**stack, "workspace": workspace})

    assert "NoSuchBucket" in doc["quarantine"]["error"]
    assert "no 'archive'" in doc["archive"]["error"]
    assert doc["stream"]["consumers"]


def test_an_endpoint_that_does_not_answer_is_said_once_and_nothing_waits_on_it(
    stack: dict[str, Any],
) -> None:
    doc = gather_status(stack["workspace"], probe=lambda url: f"no answer from {url}")

    assert doc["endpoint"]["answers"] is False
    assert all(doc[s] == {"error": "no answer from http://127.0.0.1:9"} for s in SECTIONS)
    assert "does not answer" in format_status(doc)


def test_on_aws_lag_is_the_iterator_age_and_records_behind_are_not_available(
    stack: dict[str, Any],
) -> None:
    aws_workspace = Workspace("dev", None, REGION, stack["workspace"].outputs)

    doc = _status({**stack, "workspace": aws_workspace})

    assert (doc["target"], doc["endpoint"], doc["stream"]["checkpoints"]) == ("aws", None, "aws")
    for consumer in doc["stream"]["consumers"]:
        assert consumer["records_behind"] is None
        assert consumer["age_of"] == "iterator-age"
    assert all(s["latest_sequence_number"] is None for s in doc["stream"]["shards"])
    assert "not available" in format_status(doc)


# --- text -------------------------------------------------------------------------------------


def _long_names(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` with AWS-length sequence numbers and longer names than the fixture's."""
    doc = json.loads(json.dumps(doc))
    for shard in doc["stream"]["shards"]:
        shard["latest_sequence_number"] = SEQ
        for c in shard["consumers"]:
            c["checkpoint"] = SEQ[:-3] + "000"
    long_queue = "acme-production-eu-west-1-customer-analytics-lake-writer-dlq"
    doc["dead_letters"]["queues"][0]["queue"] = long_queue
    return doc


def test_the_text_fits_80_columns_and_cuts_no_name(stack: dict[str, Any]) -> None:
    doc = _long_names(_status(stack))

    text = format_status(doc)
    lines = text.splitlines()

    assert max(len(line) for line in lines) <= 80
    assert "\x1b" not in text  # plain when piped: no terminal escapes
    assert SEQ in text  # a sequence number is never cut
    for name in doc["deployed"]["functions"].values():
        assert name in text
    assert "behind, oldest arrived" in text
    queue_line = next(n for n, line in enumerate(lines) if "acme-production-" in line)
    column = lines[queue_line].index("acme-production-")
    pieces = []
    for line in lines[queue_line:]:
        piece = line[column:].split("  ")[0].strip()
        if not piece:
            break
        pieces.append(piece)
        if piece.endswith("dlq"):
            break
    assert "".join(pieces) == "acme-production-eu-west-1-customer-analytics-lake-writer-dlq"
    for heading in ("Deployed", "Consumers", "Shards", "Quarantine", "Dead letters", "Alerts"):
        assert heading in lines
    assert any(line.startswith("Lake") for line in lines)
    assert any(line.startswith("Archive") for line in lines)


def test_the_text_is_as_narrow_as_asked(stack: dict[str, Any]) -> None:
    doc = _long_names(_status(stack))
    assert max(len(line) for line in format_status(doc, width=64).splitlines()) <= 64


def test_a_table_wraps_its_widest_column_at_hyphens_and_keeps_the_numbers_whole() -> None:
    rows = [["a-very-long-queue-name-that-cannot-fit-in-the-column", "12,345"], ["short", "1"]]

    lines = table(rows, 30, headers=["queue", "messages"], right=(1,))

    assert max(len(line) for line in lines) <= 30
    assert lines[1].endswith("12,345")
    width = len(lines[1]) - len("12,345") - 2 - 2
    rebuilt = "".join(line[2 : 2 + width].strip() for line in lines[1:-1])
    assert rebuilt == rows[0][0]


def test_sizes_and_durations_read_as_people_say_them() -> None:
    assert [size(0), size(2048), size(5 * 1024**3)] == ["0 B", "2.0 KiB", "5.0 GiB"]
    assert [
        duration(4),
        duration(125),
        duration(3 * 3600 + 420),
        duration(2 * 86400 + 4 * 3600),
    ] == [
        "4s",
        "2m 05s",
        "3h 07m",
        "2d 04h",
    ]


# --- the command line -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["status", "--workspace", "nope"],
        ["logs", "projector", "--workspace", "nope"],
        ["alerts", "--workspace", "nope"],
    ],
)
def test_an_unknown_workspace_is_one_line_naming_how_to_create_it(
    argv: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("PIPELINE_STATE_DIR", str(tmp_path))

    code = main(argv)

    err = capsys.readouterr().err
    assert code == 1
    assert len(err.strip().splitlines()) == 1
    assert "'nope'" in err and "pipeline up --workspace nope" in err
    assert "Traceback" not in err


# --- logs -------------------------------------------------------------------------------------


def test_durations_parse_in_the_units_people_use() -> None:
    assert parse_duration("90s") == timedelta(seconds=90)
    assert parse_duration("1h30m") == timedelta(minutes=90)
    assert parse_duration("2d") == timedelta(days=2)
    assert parse_duration("45") == timedelta(seconds=45)
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("last week")


def test_a_function_is_named_by_its_key_or_its_full_name() -> None:
    functions = {"projector": "acme-projector", "lake-writer": "acme-lake-writer"}
    assert resolve_function(functions, "projector") == ("projector", "acme-projector")
    assert resolve_function(functions, "lake_writer") == ("lake-writer", "acme-lake-writer")
    assert resolve_function(functions, "acme-lake-writer") == ("lake-writer", "acme-lake-writer")
    with pytest.raises(Exception, match=r"lake-writer \(acme-lake-writer\), projector"):
        resolve_function(functions, "alerter")


def _emf(ms: int) -> str:
    return json.dumps({"_aws": {"Timestamp": ms, "CloudWatchMetrics": []}, "Events": [1.0]})


def test_log_lines_carry_their_time_and_untimed_lines_follow_the_one_before() -> None:
    old = _emf(1_000_000)
    new = '{"level": "INFO", "timestamp": "2026-12-04 20:25:29,218+0000", "message": "hi"}'
    assert line_time(old) == 1000.0
    assert line_time(new) == datetime(2026, 12, 4, 20, 25, 29, 218000, UTC).timestamp()
    assert line_time("Traceback (most recent call last):") is None

    lines = ["orphan", old, "  old detail", new, "  new detail"]

    assert list(lines_since(lines, 2000.0)) == [new, "  new detail"]
    assert list(lines_since(lines, None)) == lines


def test_following_a_log_prints_what_is_appended_and_survives_a_cut(tmp_path: Path) -> None:
    path = tmp_path / "fn.log"
    path.write_text("first\n")
    out = io.StringIO()
    appended = iter(["second\nthi", "rd\n", None])
    rounds = []

    def sleep(_: float) -> None:
        rounds.append(1)
        text = next(appended)
        if text is None:
            path.write_text("again\n")  # replaced by a shorter file
        else:
            with path.open("a") as handle:
                handle.write(text)

    printed = follow_file(
        path, out, since=None, follow=True, sleep=sleep, keep_going=lambda: len(rounds) < 3
    )

    assert out.getvalue() == "first\nsecond\nthird\nagain\n"
    assert printed == 4


# --- alerts -----------------------------------------------------------------------------------


def test_severity_filters_keep_the_severity_and_everything_above() -> None:
    assert [s for s in ("low", "medium", "high", "critical") if at_least(s, "high")] == [
        "high",
        "critical",
    ]
    assert at_least(None, None) and not at_least(None, "low")


def _publish(sns: Any, topic: str, severity: str, rule: str = "fraud_amount") -> None:
    body = {"alert_id": f"{rule}#e", "rule": rule, "severity": severity, "subject": "user-1"}
    sns.publish(
        TopicArn=topic,
        Message=json.dumps(body),
        MessageAttributes={
            "severity": {"DataType": "String", "StringValue": severity},
            "rule": {"DataType": "String", "StringValue": rule},
        },
    )


def _leftovers(aws: Callable[[str], Any], topics: dict[str, str]) -> tuple[list[str], int]:
    queues = aws("sqs").list_queues().get("QueueUrls", [])
    subscriptions = sum(
        len(aws("sns").list_subscriptions_by_topic(TopicArn=t)["Subscriptions"])
        for t in topics.values()
    )
    return [q for q in queues if "-alerts-" in q], subscriptions


def test_a_tap_receives_the_alerts_of_its_severity_and_leaves_nothing(
    aws: Callable[[str], Any],
) -> None:
    sns = aws("sns")
    topics = {k: sns.create_topic(Name=f"{PREFIX}-{k}")["TopicArn"] for k in ("fraud", "ops")}
    tap = AlertTap(aws("sqs"), sns, topics, name_prefix=PREFIX).open()
    _publish(sns, topics["fraud"], "high")
    _publish(sns, topics["fraud"], "low", "cpu_usage")
    sns.publish(TopicArn=topics["ops"], Message=json.dumps({"AlarmName": "x-dlq-not-empty"}))
    seen: list[dict[str, Any]] = []
    try:
        listen(tap, seen.append, follow=False, wait_seconds=1, minimum="medium")
    finally:
        assert tap.close() == []

    assert [(a["topic"], a["severity"], a["rule"]) for a in seen] == [
        ("fraud", "high", "fraud_amount")
    ]
    assert seen[0]["message"]["subject"] == "user-1"
    assert _leftovers(aws, topics) == ([], 0)


def test_an_alarm_without_severity_is_shown_when_no_severity_is_asked() -> None:
    body = json.dumps(
        {
            "Type": "Notification",
            "TopicArn": "arn:aws:sns:us-east-1:1:ops",
            "Timestamp": "2026-12-04T20:00:00.000Z",
            "Message": json.dumps({"AlarmName": "acme-projector-errors", "NewStateValue": "ALARM"}),
        }
    )
    alert = parse_notification(body, {"arn:aws:sns:us-east-1:1:ops": "operations"})
    assert (alert["topic"], alert["severity"], alert["rule"], alert["subject"]) == (
        "operations",
        None,
        "acme-projector-errors",
        "ALARM",
    )


def test_ctrl_c_while_following_removes_the_queue_and_the_subscriptions(
    aws: Callable[[str], Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sns = aws("sns")
    topics = {"fraud_alerts": sns.create_topic(Name=f"{PREFIX}-fraud")["TopicArn"]}
    outputs = {"name_prefix": PREFIX, "region": REGION, "topic_arns": topics}
    Workspace("dev", None, REGION, outputs, state_dir=tmp_path).save()
    monkeypatch.setenv("PIPELINE_STATE_DIR", str(tmp_path))
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    calls = []
    receive = AlertTap.receive

    def interrupted(self: AlertTap, wait_seconds: int) -> list[str]:
        calls.append(wait_seconds)
        if len(calls) == 1:
            _publish(sns, topics["fraud_alerts"], "critical")
            return receive(self, 1)
        raise KeyboardInterrupt

    monkeypatch.setattr(alerts_command.AlertTap, "receive", interrupted)
    args = argparse.Namespace(
        workspace="dev",
        endpoint=None,
        topic=None,
        follow=True,
        wait=5.0,
        severity=None,
        json=True,
    )

    code = alerts_command.watch_alerts(args)

    out, err = capsys.readouterr()
    assert code == 130
    assert json.loads(out)["severity"] == "critical"
    assert "1 alert shown; subscriptions and queue removed" in err
    assert _leftovers(aws, topics) == ([], 0)


def test_an_unknown_topic_lists_the_known_ones() -> None:
    with pytest.raises(Exception, match="it has fraud_alerts"):
        alerts_command.chosen_topics({"topic_arns": {"fraud_alerts": "arn"}}, ["nope"])


def test_an_alert_line_says_when_how_bad_where_and_what() -> None:
    alert = {
        "published_at": "2026-12-04T20:25:52.030Z",
        "severity": "high",
        "topic": "fraud_alerts",
        "rule": "fraud_amount",
        "subject": "user-e68cfae7e1cd",
    }
    line = alerts_command.format_alert(alert)
    assert line == "2026-12-04 20:25:52  HIGH  fraud_alerts  fraud_amount  user-e68cfae7e1cd"
    assert re.fullmatch(r"[^\n]{1,80}", line)
