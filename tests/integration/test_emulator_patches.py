"""The emulator behaves as AWS where moto 5.2.5 does not (one section per patch).

Every test talks to a running emulator over HTTP with boto3. Each ``*_as_released`` test runs
the same scenario on moto without our patches (the session's ``moto_as_released`` clients) and
checks the difference is still there: when a moto upgrade fixes one, that test fails and the
patch can go.
"""

from __future__ import annotations

import io
import json
import time
import uuid
import zipfile
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

pytestmark = pytest.mark.integration

ClientFactory = Callable[[str], Any]

QUEUE_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "sqs:SendMessage", "Resource": "*"}
    ],
}


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


# --- 1. SQS SetQueueAttributes keeps the policy; RedrivePolicy is compact JSON ------------------


def _queue_with_policy_and_redrive(aws_client: ClientFactory) -> tuple[Any, str, str]:
    sqs = aws_client("sqs")
    dlq_url = sqs.create_queue(QueueName=_name("dlq"))["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 5})
    queue_url = sqs.create_queue(
        QueueName=_name("queue"),
        Attributes={"Policy": json.dumps(QUEUE_POLICY), "RedrivePolicy": redrive},
    )["QueueUrl"]
    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"VisibilityTimeout": "120"})
    return sqs, queue_url, dlq_arn


def _attributes(sqs: Any, queue_url: str) -> dict[str, str]:
    attributes: dict[str, str] = sqs.get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["All"]
    )["Attributes"]
    return attributes


def test_set_queue_attributes_without_policy_keeps_the_policy(aws_client: ClientFactory) -> None:
    sqs, queue_url, _ = _queue_with_policy_and_redrive(aws_client)

    attributes = _attributes(sqs, queue_url)

    assert attributes["VisibilityTimeout"] == "120"
    assert json.loads(attributes["Policy"])["Statement"] == QUEUE_POLICY["Statement"]


def test_empty_policy_removes_the_policy(aws_client: ClientFactory) -> None:
    sqs, queue_url, _ = _queue_with_policy_and_redrive(aws_client)

    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"Policy": ""})

    assert "Policy" not in _attributes(sqs, queue_url)


def test_redrive_policy_reads_back_as_compact_json(aws_client: ClientFactory) -> None:
    sqs, queue_url, dlq_arn = _queue_with_policy_and_redrive(aws_client)

    redrive = _attributes(sqs, queue_url)["RedrivePolicy"]

    assert redrive == f'{{"deadLetterTargetArn":"{dlq_arn}","maxReceiveCount":5}}'


def test_queue_attributes_as_released(moto_as_released: ClientFactory) -> None:
    sqs, queue_url, _ = _queue_with_policy_and_redrive(moto_as_released)

    attributes = _attributes(sqs, queue_url)

    assert "Policy" not in attributes
    assert ", " in attributes["RedrivePolicy"]


# --- 2. Athena ListTagsForResource of an untagged workgroup -------------------------------------


def _workgroup_arn(athena: Any, name: str) -> str:
    athena.create_work_group(Name=name, Configuration={})
    return f"arn:aws:athena:us-east-1:123456789012:workgroup/{name}"


def test_untagged_workgroup_lists_no_tags(aws_client: ClientFactory) -> None:
    athena = aws_client("athena")
    arn = _workgroup_arn(athena, _name("wg"))

    assert athena.list_tags_for_resource(ResourceARN=arn)["Tags"] == []


def test_tagged_workgroup_lists_its_tags(aws_client: ClientFactory) -> None:
    athena = aws_client("athena")
    arn = _workgroup_arn(athena, _name("wg"))

    athena.tag_resource(ResourceARN=arn, Tags=[{"Key": "team", "Value": "data"}])

    assert athena.list_tags_for_resource(ResourceARN=arn)["Tags"] == [
        {"Key": "team", "Value": "data"}
    ]


def test_tags_of_a_missing_workgroup_do_not_exist(aws_client: ClientFactory) -> None:
    athena = aws_client("athena")
    arn = "arn:aws:athena:us-east-1:123456789012:workgroup/never-created"

    with pytest.raises(ClientError) as raised:
        athena.list_tags_for_resource(ResourceARN=arn)

    assert raised.value.response["Error"]["Code"] == "InvalidRequestException"


def test_untagged_workgroup_tags_as_released(moto_as_released: ClientFactory) -> None:
    athena = moto_as_released("athena")
    arn = _workgroup_arn(athena, _name("wg"))

    with pytest.raises(ClientError, match="Does Not Exist"):
        athena.list_tags_for_resource(ResourceARN=arn)


# --- 3. Athena DeleteNamedQuery ----------------------------------------------------------------


def _named_query(athena: Any) -> str:
    query_id: str = athena.create_named_query(
        Name=_name("query"), Database="lake", QueryString="SELECT 1", WorkGroup="primary"
    )["NamedQueryId"]
    return query_id


def test_deleted_named_query_is_gone(aws_client: ClientFactory) -> None:
    athena = aws_client("athena")
    query_id = _named_query(athena)

    athena.delete_named_query(NamedQueryId=query_id)

    assert query_id not in athena.list_named_queries(WorkGroup="primary")["NamedQueryIds"]
    with pytest.raises(ClientError, match="does not exist") as raised:
        athena.get_named_query(NamedQueryId=query_id)
    assert raised.value.response["Error"]["Code"] == "InvalidRequestException"


def test_deleting_an_unknown_named_query_fails(aws_client: ClientFactory) -> None:
    athena = aws_client("athena")

    with pytest.raises(ClientError, match="does not exist") as raised:
        athena.delete_named_query(NamedQueryId=str(uuid.uuid4()))

    assert raised.value.response["Error"]["Code"] == "InvalidRequestException"


def test_delete_named_query_as_released(moto_as_released: ClientFactory) -> None:
    athena = moto_as_released("athena")
    query_id = _named_query(athena)

    with pytest.raises(ClientError) as raised:
        athena.delete_named_query(NamedQueryId=query_id)

    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500


# --- 4. Kinesis CreateStream with Tags ---------------------------------------------------------


def _stream_tags_after_create(kinesis: Any) -> list[dict[str, str]]:
    name = _name("stream")
    kinesis.create_stream(StreamName=name, ShardCount=1, Tags={"team": "data", "env": "local"})
    tags: list[dict[str, str]] = kinesis.list_tags_for_stream(StreamName=name)["Tags"]
    return tags


def test_create_stream_applies_its_tags(aws_client: ClientFactory) -> None:
    tags = _stream_tags_after_create(aws_client("kinesis"))

    assert tags == [{"Key": "env", "Value": "local"}, {"Key": "team", "Value": "data"}]


def test_create_stream_tags_as_released(moto_as_released: ClientFactory) -> None:
    assert _stream_tags_after_create(moto_as_released("kinesis")) == []


# --- 5. Event source mappings stay metadata only ----------------------------------------------


def _function(aws_client: ClientFactory) -> tuple[str, str]:
    role = aws_client("iam").create_role(
        RoleName=_name("role"), AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17"})
    )["Role"]["Arn"]
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("handler.py", "def handle(event, context):\n    return {}\n")
    name = _name("function")
    arn: str = aws_client("lambda").create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=role,
        Handler="handler.handle",
        Code={"ZipFile": archive.getvalue()},
    )["FunctionArn"]
    return name, arn


def _invocation_attempts(aws_client: ClientFactory, function_name: str) -> int:
    """How many times the emulator tried to run the function (each attempt writes a log stream)."""
    logs = aws_client("logs")
    try:
        streams = logs.describe_log_streams(logGroupName=f"/aws/lambda/{function_name}")
    except logs.exceptions.ResourceNotFoundException:
        return 0
    return len(streams["logStreams"])


def _mapped_queue_with_message(aws_client: ClientFactory) -> tuple[str, str, str]:
    """A queue with a DLQ, mapped to a function, with one message sent; (fn, queue, dlq) back."""
    sqs = aws_client("sqs")
    dlq_url = sqs.create_queue(QueueName=_name("dlq"))["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    queue_url = sqs.create_queue(
        QueueName=_name("queue"),
        Attributes={
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 1})
        },
    )["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    function_name, function_arn = _function(aws_client)
    aws_client("lambda").create_event_source_mapping(
        EventSourceArn=queue_arn, FunctionName=function_arn, BatchSize=5
    )
    sqs.send_message(QueueUrl=queue_url, MessageBody="hello")
    return function_name, queue_url, dlq_url


def test_sqs_mapping_leaves_messages_for_the_runtime(aws_client: ClientFactory) -> None:
    function_name, queue_url, dlq_url = _mapped_queue_with_message(aws_client)
    sqs = aws_client("sqs")

    received = sqs.receive_message(QueueUrl=queue_url, AttributeNames=["All"])["Messages"]

    assert [m["Body"] for m in received] == ["hello"]
    assert received[0]["Attributes"]["ApproximateReceiveCount"] == "1"
    assert "Messages" not in sqs.receive_message(QueueUrl=dlq_url)
    assert _invocation_attempts(aws_client, function_name) == 0


def test_kinesis_and_dynamodb_mappings_are_never_run(aws_client: ClientFactory) -> None:
    kinesis, dynamodb, lambda_ = aws_client("kinesis"), aws_client("dynamodb"), aws_client("lambda")
    function_name, function_arn = _function(aws_client)
    stream = _name("stream")
    kinesis.create_stream(StreamName=stream, ShardCount=1)
    stream_arn = kinesis.describe_stream(StreamName=stream)["StreamDescription"]["StreamARN"]
    table = _name("table")
    table_stream_arn = dynamodb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
    )["TableDescription"]["LatestStreamArn"]
    for source in (stream_arn, table_stream_arn):
        lambda_.create_event_source_mapping(
            EventSourceArn=source,
            FunctionName=function_arn,
            StartingPosition="TRIM_HORIZON",
            BatchSize=100,
            FunctionResponseTypes=["ReportBatchItemFailures"],
        )

    kinesis.put_records(
        StreamName=stream,
        Records=[{"Data": b"event-%d" % i, "PartitionKey": "user-1"} for i in range(20)],
    )
    dynamodb.put_item(TableName=table, Item={"pk": {"S": "one"}})

    assert _invocation_attempts(aws_client, function_name) == 0
    mappings = lambda_.list_event_source_mappings(EventSourceArn=stream_arn)["EventSourceMappings"]
    assert [(m["BatchSize"], m["FunctionResponseTypes"]) for m in mappings] == [
        (100, ["ReportBatchItemFailures"])
    ]


def test_event_source_mappings_as_released(moto_as_released: ClientFactory) -> None:
    function_name, queue_url, _ = _mapped_queue_with_message(moto_as_released)

    received = moto_as_released("sqs").receive_message(QueueUrl=queue_url, AttributeNames=["All"])

    assert _invocation_attempts(moto_as_released, function_name) > 0
    assert (
        received.get("Messages", [{}])[0].get("Attributes", {}).get("ApproximateReceiveCount")
        != "1"
    )


# --- 6. Kinesis shards indexed by sequence number ----------------------------------------------

LARGE_SHARD_RECORDS = 30_000


def _fill_one_shard(kinesis: Any, count: int) -> tuple[str, str, list[str]]:
    stream = _name("stream")
    kinesis.create_stream(StreamName=stream, ShardCount=1)
    sequence_numbers: list[str] = []
    for start in range(0, count, 500):
        response = kinesis.put_records(
            StreamName=stream,
            Records=[
                {"Data": f"record-{i}".encode(), "PartitionKey": f"key-{i % 7}"}
                for i in range(start, min(start + 500, count))
            ],
        )
        assert response["FailedRecordCount"] == 0
        sequence_numbers += [r["SequenceNumber"] for r in response["Records"]]
    shard_id = kinesis.list_shards(StreamName=stream)["Shards"][0]["ShardId"]
    return stream, shard_id, sequence_numbers


def _read_all(kinesis: Any, iterator: str, limit: int = 10_000) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    while True:
        response = kinesis.get_records(ShardIterator=iterator, Limit=limit)
        records += response["Records"]
        iterator = response["NextShardIterator"]
        if not response["Records"]:
            return records


def test_large_shard_reads_back_every_record_in_order(aws_client: ClientFactory) -> None:
    kinesis = aws_client("kinesis")
    stream, shard_id, put_sequence_numbers = _fill_one_shard(kinesis, LARGE_SHARD_RECORDS)

    iterator = kinesis.get_shard_iterator(
        StreamName=stream, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    records = _read_all(kinesis, iterator)

    assert [r["Data"] for r in records] == [
        f"record-{i}".encode() for i in range(LARGE_SHARD_RECORDS)
    ]
    assert [r["SequenceNumber"] for r in records] == put_sequence_numbers
    numbers = [int(n) for n in put_sequence_numbers]
    assert numbers == sorted(set(numbers))


@pytest.mark.parametrize(
    ("iterator_type", "expected_first"),
    [("AT_SEQUENCE_NUMBER", 1200), ("AFTER_SEQUENCE_NUMBER", 1201)],
)
def test_iterators_start_where_asked_in_a_large_shard(
    aws_client: ClientFactory, iterator_type: str, expected_first: int
) -> None:
    kinesis = aws_client("kinesis")
    stream, shard_id, sequence_numbers = _fill_one_shard(kinesis, 3_000)

    iterator = kinesis.get_shard_iterator(
        StreamName=stream,
        ShardId=shard_id,
        ShardIteratorType=iterator_type,
        StartingSequenceNumber=sequence_numbers[1200],
    )["ShardIterator"]
    response = kinesis.get_records(ShardIterator=iterator, Limit=100)

    assert [r["Data"] for r in response["Records"]] == [
        f"record-{i}".encode() for i in range(expected_first, expected_first + 100)
    ]
    assert response["MillisBehindLatest"] >= 0


def test_latest_iterator_sees_only_new_records(aws_client: ClientFactory) -> None:
    kinesis = aws_client("kinesis")
    stream, shard_id, _ = _fill_one_shard(kinesis, 1_000)
    iterator = kinesis.get_shard_iterator(
        StreamName=stream, ShardId=shard_id, ShardIteratorType="LATEST"
    )["ShardIterator"]

    kinesis.put_record(StreamName=stream, Data=b"fresh", PartitionKey="key")

    assert [r["Data"] for r in _read_all(kinesis, iterator)] == [b"fresh"]


def test_at_timestamp_iterator_starts_at_the_first_later_record(
    aws_client: ClientFactory,
) -> None:
    kinesis = aws_client("kinesis")
    stream, shard_id, _ = _fill_one_shard(kinesis, 1_000)
    iterator = kinesis.get_shard_iterator(
        StreamName=stream, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    cutoff = kinesis.get_records(ShardIterator=iterator, Limit=1000)["Records"][600][
        "ApproximateArrivalTimestamp"
    ]

    at_timestamp = kinesis.get_shard_iterator(
        StreamName=stream, ShardId=shard_id, ShardIteratorType="AT_TIMESTAMP", Timestamp=cutoff
    )["ShardIterator"]
    records = _read_all(kinesis, at_timestamp)

    assert records[0]["ApproximateArrivalTimestamp"] >= cutoff
    assert records[-1]["Data"] == b"record-999"
    assert int(records[0]["SequenceNumber"]) <= 601


# --- 7. Retention: young records stay (trimming of old ones: tests/unit) ----------------------


def test_records_within_retention_are_kept(aws_client: ClientFactory) -> None:
    kinesis = aws_client("kinesis")
    stream, shard_id, sequence_numbers = _fill_one_shard(kinesis, 500)

    shard = kinesis.list_shards(StreamName=stream)["Shards"][0]
    iterator = kinesis.get_shard_iterator(
        StreamName=stream, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]

    assert shard["SequenceNumberRange"]["StartingSequenceNumber"] == sequence_numbers[0]
    assert len(_read_all(kinesis, iterator)) == 500


# -- Resource policies: unmatched conditions ---------------------------------------------------

_TLS_ONLY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": ["arn:aws:s3:::{bucket}", "arn:aws:s3:::{bucket}/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }
    ],
}


def _put_into_tls_only_bucket(s3: Any, bucket: str) -> None:
    s3.create_bucket(Bucket=bucket)
    policy = json.dumps(_TLS_ONLY).replace("{bucket}", bucket)
    s3.put_bucket_policy(Bucket=bucket, Policy=policy)
    s3.put_object(Bucket=bucket, Key="quarantine/a.avro", Body=b"bytes")


def test_a_tls_only_bucket_policy_lets_object_writes_through(aws_client: ClientFactory) -> None:
    s3 = aws_client("s3")
    _put_into_tls_only_bucket(s3, "tls-only-patched")
    assert s3.get_object(Bucket="tls-only-patched", Key="quarantine/a.avro")["Body"].read() == (
        b"bytes"
    )


def test_tls_only_bucket_policy_as_released(moto_as_released: ClientFactory) -> None:
    with pytest.raises(ClientError) as caught:
        _put_into_tls_only_bucket(moto_as_released("s3"), "tls-only-released")
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


# -- Lambda functions: dead-letter and logging configurations ----------------------------------


def _function_with_configs(factory: ClientFactory) -> dict[str, Any]:
    name, _ = _function(factory)
    lam = factory("lambda")
    lam.update_function_configuration(
        FunctionName=name,
        DeadLetterConfig={"TargetArn": "arn:aws:sqs:us-east-1:123456789012:dlq"},
        LoggingConfig={"LogFormat": "JSON", "LogGroup": "/aws/lambda/custom"},
    )
    configuration: dict[str, Any] = lam.get_function_configuration(FunctionName=name)
    return configuration


def test_function_dead_letter_and_logging_configs_read_back(aws_client: ClientFactory) -> None:
    config = _function_with_configs(aws_client)
    assert config["DeadLetterConfig"] == {"TargetArn": "arn:aws:sqs:us-east-1:123456789012:dlq"}
    assert config["LoggingConfig"]["LogFormat"] == "JSON"
    assert config["LoggingConfig"]["LogGroup"] == "/aws/lambda/custom"


def test_a_function_without_logging_config_logs_text_to_its_own_group(
    aws_client: ClientFactory,
) -> None:
    name, _ = _function(aws_client)
    config = aws_client("lambda").get_function_configuration(FunctionName=name)
    assert config["LoggingConfig"] == {"LogFormat": "Text", "LogGroup": f"/aws/lambda/{name}"}
    assert "DeadLetterConfig" not in config


def test_function_configs_as_released(moto_as_released: ClientFactory) -> None:
    config = _function_with_configs(moto_as_released)
    assert "DeadLetterConfig" not in config
    assert "LoggingConfig" not in config


# --- 10. Glue UpdateTable at a VersionId ---------------------------------------------------------


def _glue_table(glue: Any) -> tuple[str, str, str]:
    """A new Glue table pointing at its first metadata file; (database, table, VersionId) back."""
    database, table = _name("db"), "events"
    glue.create_database(DatabaseInput={"Name": database})
    glue.create_table(
        DatabaseName=database,
        TableInput={"Name": table, "Parameters": {"metadata_location": "s3://lake/v1.json"}},
    )
    version: str = glue.get_table(DatabaseName=database, Name=table)["Table"]["VersionId"]
    return database, table, version


def _point_at(glue: Any, database: str, table: str, location: str, **version: str) -> None:
    glue.update_table(
        DatabaseName=database,
        TableInput={"Name": table, "Parameters": {"metadata_location": location}},
        **version,
    )


def _table(glue: Any, database: str, table: str) -> dict[str, Any]:
    found: dict[str, Any] = glue.get_table(DatabaseName=database, Name=table)["Table"]
    return found


def test_update_table_at_a_stale_version_is_refused(aws_client: ClientFactory) -> None:
    glue = aws_client("glue")
    database, table, read = _glue_table(glue)
    _point_at(glue, database, table, "s3://lake/v2.json", VersionId=read)
    current = _table(glue, database, table)

    with pytest.raises(ClientError) as raised:
        _point_at(glue, database, table, "s3://lake/v2-lost.json", VersionId=read)

    error = raised.value.response["Error"]
    assert error["Code"] == "ConcurrentModificationException"
    assert error["Message"] == "Update table failed due to concurrent modifications."
    assert _table(glue, database, table) == current


def test_update_table_at_the_current_version_advances_it(aws_client: ClientFactory) -> None:
    glue = aws_client("glue")
    database, table, read = _glue_table(glue)

    _point_at(glue, database, table, "s3://lake/v2.json", VersionId=read)

    updated = _table(glue, database, table)
    assert updated["Parameters"] == {"metadata_location": "s3://lake/v2.json"}
    assert int(updated["VersionId"]) == int(read) + 1
    _point_at(glue, database, table, "s3://lake/v3.json", VersionId=updated["VersionId"])
    assert int(_table(glue, database, table)["VersionId"]) == int(read) + 2


def test_update_table_without_a_version_is_unconditional(aws_client: ClientFactory) -> None:
    glue = aws_client("glue")
    database, table, read = _glue_table(glue)
    _point_at(glue, database, table, "s3://lake/v2.json", VersionId=read)

    _point_at(glue, database, table, "s3://lake/v3.json")

    updated = _table(glue, database, table)
    assert updated["Parameters"] == {"metadata_location": "s3://lake/v3.json"}
    assert int(updated["VersionId"]) == int(read) + 2


def test_update_table_at_a_stale_version_as_released(moto_as_released: ClientFactory) -> None:
    glue = moto_as_released("glue")
    database, table, read = _glue_table(glue)
    _point_at(glue, database, table, "s3://lake/v2.json", VersionId=read)

    _point_at(glue, database, table, "s3://lake/v2-lost.json", VersionId=read)

    assert _table(glue, database, table)["Parameters"] == {
        "metadata_location": "s3://lake/v2-lost.json"
    }


# --- 11. athena_executes_sql ------------------------------------------------------------


def _athena_query(aws: ClientFactory, sql: str, name: str) -> tuple[Any, str]:
    """``sql`` started in a workgroup of its own whose results go to a bucket of its own."""
    bucket = f"athena-results-{name}"
    aws("s3").create_bucket(Bucket=bucket)
    athena = aws("athena")
    athena.create_work_group(
        Name=name,
        Configuration={
            "ResultConfiguration": {"OutputLocation": f"s3://{bucket}/q/"},
            "EnforceWorkGroupConfiguration": True,
        },
    )
    query_id = athena.start_query_execution(QueryString=sql, WorkGroup=name)["QueryExecutionId"]
    return athena, query_id


def _final(athena: Any, query_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        execution = athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]
        if execution["Status"]["State"] not in ("QUEUED", "RUNNING"):
            return execution
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_athena_runs_the_sql_and_writes_the_result(aws_client: ClientFactory) -> None:
    sql = "SELECT n, n * 2.5 AS x FROM (VALUES (1), (2)) AS t(n) ORDER BY n"
    athena, query_id = _athena_query(aws_client, sql, "sql-runs")
    execution = _final(athena, query_id)
    assert execution["Status"]["State"] == "SUCCEEDED"
    assert execution["ResultConfiguration"]["OutputLocation"] == (
        f"s3://athena-results-sql-runs/q/{query_id}.csv"
    )
    result = athena.get_query_results(QueryExecutionId=query_id)["ResultSet"]
    assert [[c["VarCharValue"] for c in row["Data"]] for row in result["Rows"]] == [
        ["n", "x"],
        ["1", "2.5"],
        ["2", "5.0"],
    ]
    assert [c["Type"] for c in result["ResultSetMetadata"]["ColumnInfo"]] == ["integer", "decimal"]
    body = aws_client("s3").get_object(Bucket="athena-results-sql-runs", Key=f"q/{query_id}.csv")
    assert body["Body"].read() == b'"n","x"\n"1","2.5"\n"2","5.0"\n'


def test_athena_fails_invalid_sql_with_the_reason(aws_client: ClientFactory) -> None:
    athena, query_id = _athena_query(aws_client, "SELEC 1", "sql-fails")
    status = _final(athena, query_id)["Status"]
    assert status["State"] == "FAILED"
    assert status["StateChangeReason"].startswith("invalid SQL")
    assert status["AthenaError"]["Retryable"] is False


def test_athena_sql_as_released(moto_as_released: ClientFactory) -> None:
    athena, query_id = _athena_query(moto_as_released, "SELEC 1", "sql-released")
    assert _final(athena, query_id)["Status"]["State"] == "SUCCEEDED"
    assert athena.get_query_results(QueryExecutionId=query_id)["ResultSet"]["Rows"] == []
