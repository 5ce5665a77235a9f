"""The real root module, applied once for the session by ``pipeline up`` (tests/conftest.py).

The shape checks run on that apply: what the Python code relies on must exist with the right
keys, encryption and wiring, and each function's environment must hold what its reader
requires. A second workspace goes up beside it, and ``pipeline down`` leaves nothing of it
behind, in the demo's end-to-end test (tests/e2e/test_demo.py): the one other apply of the
session.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pipelines.consumers.config import SETTINGS_BY_FUNCTION, known_variables, required_variables
from pipelines_local.catalog import current_schemas, glue_columns
from pipelines_local.infra import stack
from pipelines_local.infra.cli_config import provider_mirror
from pipelines_local.packaging import LambdaRuntime
from pipelines_local.workspace import Workspace
from tests.stack import DeployedStack

pytestmark = [
    pytest.mark.integration,
    pytest.mark.terraform,
    pytest.mark.skipif(
        shutil.which("terraform") is None or not provider_mirror().is_dir(),
        reason="terraform or its provider mirror is not installed",
    ),
]


@pytest.fixture(scope="module")
def state_dir(deployed: DeployedStack) -> Path:
    return deployed.workspace.state_dir


@pytest.fixture(scope="module")
def aws(deployed: DeployedStack) -> Callable[[str], Any]:
    return deployed.client


@pytest.mark.needs("embedded_emulator")
def test_up_starts_an_emulator_and_records_where_the_stack_is(deployed, state_dir):
    up = deployed.up
    assert up.started_emulator and up.created_workspace
    assert up.region == "us-east-1"
    assert up.endpoint_url.startswith("http://127.0.0.1:")
    assert up.outputs["name_prefix"] == f"pipelines-{up.workspace}"
    os.kill(up.emulator_pid, 0)  # still running after up returned
    assert Workspace.load(up.workspace, state_dir).outputs == up.outputs
    print(f"\napply took {up.seconds['apply']}s on the emulator")


@pytest.mark.needs("embedded_emulator")
def test_plan_after_apply_reports_no_changes(deployed, state_dir):
    changed, text = stack.plan(deployed.workspace.name, state_dir=state_dir)
    assert not changed, text[-4000:]


def test_stream_is_encrypted_with_the_workspace_shard_count(deployed, aws):
    summary = aws("kinesis").describe_stream_summary(StreamName=deployed.outputs["stream_name"])
    stream = summary["StreamDescriptionSummary"]
    assert stream["OpenShardCount"] == 2  # workspaces/local.tfvars
    assert stream["RetentionPeriodHours"] == 168
    assert stream["EncryptionType"] == "KMS"
    assert stream["StreamModeDetails"]["StreamMode"] == "PROVISIONED"


@pytest.mark.parametrize(
    ("table", "keys", "ttl"),
    [
        ("users", {"user_id": "HASH"}, False),
        ("user_activities", {"user_id": "HASH", "timestamp": "RANGE"}, True),
        ("system_metrics", {"metric_id": "HASH"}, True),
        ("transactions", {"transaction_id": "HASH"}, False),
        ("image_analysis", {"image_key": "HASH"}, False),
        ("alerts", {"alert_id": "HASH"}, True),
        ("metric_baselines", {"source": "HASH", "metric_name": "RANGE"}, False),
        ("recent_transactions", {"user_id": "HASH", "timestamp": "RANGE"}, True),
    ],
)
def test_tables_have_the_keys_the_projections_write(deployed, aws, table, keys, ttl):
    dynamodb = aws("dynamodb")
    name = deployed.outputs["table_names"][table]
    described = dynamodb.describe_table(TableName=name)["Table"]
    assert {k["AttributeName"]: k["KeyType"] for k in described["KeySchema"]} == keys
    assert described["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert described["SSEDescription"]["SSEType"] == "KMS"
    assert described["SSEDescription"]["KMSMasterKeyArn"] == deployed.outputs["kms_key_arn"]
    ttl_status = dynamodb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
    assert (ttl_status.get("TimeToLiveStatus") == "ENABLED") == ttl
    if ttl:
        assert ttl_status["AttributeName"] == "ttl"
    backups = dynamodb.describe_continuous_backups(TableName=name)
    pitr = backups["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"]
    assert pitr["PointInTimeRecoveryStatus"] == "ENABLED"


def test_transactions_are_indexed_by_user_in_time_order(deployed, aws):
    name = deployed.outputs["table_names"]["transactions"]
    table = aws("dynamodb").describe_table(TableName=name)["Table"]
    (index,) = table["GlobalSecondaryIndexes"]
    assert index["IndexName"] == "UserTransactionsIndex"
    assert {k["AttributeName"]: k["KeyType"] for k in index["KeySchema"]} == {
        "user_id": "HASH",
        "timestamp": "RANGE",
    }


def test_buckets_are_versioned_encrypted_and_private(deployed, aws):
    s3 = aws("s3")
    buckets = deployed.outputs["bucket_names"]
    assert set(buckets) == {
        "lake",
        "archive",
        "quarantine",
        "uploads",
        "athena_results",
        "artifacts",
    }
    for bucket in buckets.values():
        assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
        (rule,) = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"][
            "Rules"
        ]
        assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
        block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
        assert all(block.values())
        policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
        assert policy["Statement"][0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_lake_moves_to_colder_storage_as_the_seed_article_says(deployed, aws):
    lake = deployed.outputs["bucket_names"]["lake"]
    (rule,) = aws("s3").get_bucket_lifecycle_configuration(Bucket=lake)["Rules"]
    assert [(t["Days"], t["StorageClass"]) for t in rule["Transitions"]] == [
        (30, "STANDARD_IA"),
        (90, "GLACIER"),
    ]
    quarantine = deployed.outputs["bucket_names"]["quarantine"]
    (rule,) = aws("s3").get_bucket_lifecycle_configuration(Bucket=quarantine)["Rules"]
    assert rule["Expiration"]["Days"] == 14  # workspaces/local.tfvars


def test_uploads_notify_the_labeler_queue(deployed, aws):
    uploads = deployed.outputs["bucket_names"]["uploads"]
    config = aws("s3").get_bucket_notification_configuration(Bucket=uploads)
    (queue,) = config["QueueConfigurations"]
    queue_url = deployed.outputs["uploads_queue_url"]
    attributes = aws("sqs").get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])[
        "Attributes"
    ]
    assert queue["QueueArn"] == attributes["QueueArn"]
    assert queue["Events"] == ["s3:ObjectCreated:*"]
    (prefix,) = queue["Filter"]["Key"]["FilterRules"]
    assert prefix["Value"] == "uploads/"
    policy = json.loads(attributes["Policy"])
    assert policy["Statement"][0]["Principal"] == {"Service": "s3.amazonaws.com"}
    assert json.loads(attributes["RedrivePolicy"])["deadLetterTargetArn"].endswith("-uploads-dlq")


@pytest.mark.needs("glue")
def test_glue_tables_are_iceberg_tables_whose_columns_equal_the_avro_fields(deployed, aws):
    """`pipeline up` created the tables (Terraform owns the database): Iceberg tables at the
    lake bucket, with the Avro fields as columns and then `dt`, their partition."""
    glue = aws("glue")
    database = deployed.outputs["glue_database"]
    schemas = current_schemas()
    assert set(deployed.outputs["lake_tables"]) == set(schemas)
    lake = deployed.outputs["bucket_names"]["lake"]
    for event_type, schema in schemas.items():
        name = deployed.outputs["lake_tables"][event_type]["table_name"]
        table = glue.get_table(DatabaseName=database, Name=name)["Table"]
        columns = [
            {"name": c["Name"], "type": c["Type"]} for c in table["StorageDescriptor"]["Columns"]
        ]
        assert columns == [*glue_columns(schema), {"name": "dt", "type": "string"}], event_type
        parameters = table["Parameters"]
        assert parameters["table_type"].upper() == "ICEBERG"
        assert parameters["metadata_location"].startswith(f"s3://{lake}/{name}/metadata/")
        assert table["StorageDescriptor"]["Location"] == f"s3://{lake}/{name}"
        assert "projection.enabled" not in parameters  # Iceberg plans its own partitions


@pytest.mark.needs("athena")
def test_athena_workgroup_enforces_a_scan_cutoff_and_encrypted_results(deployed, aws):
    athena = aws("athena")
    workgroup = athena.get_work_group(WorkGroup=deployed.outputs["athena_workgroup"])["WorkGroup"]
    config = workgroup["Configuration"]
    assert config["EnforceWorkGroupConfiguration"] is True
    assert config["BytesScannedCutoffPerQuery"] == 10737418240
    results = config["ResultConfiguration"]
    assert results["EncryptionConfiguration"]["EncryptionOption"] == "SSE_KMS"
    assert results["OutputLocation"].startswith(
        f"s3://{deployed.outputs['bucket_names']['athena_results']}/"
    )
    ids = athena.list_named_queries(WorkGroup=deployed.outputs["athena_workgroup"])["NamedQueryIds"]
    (query,) = [athena.get_named_query(NamedQueryId=i)["NamedQuery"] for i in ids]
    assert "user_activity_recorded" in query["QueryString"]


def test_alert_topics_are_encrypted(deployed, aws):
    sns = aws("sns")
    topics = deployed.outputs["topic_arns"]
    assert set(topics) == {"anomaly_alerts", "fraud_alerts", "user_notifications", "operations"}
    for arn in topics.values():
        assert sns.get_topic_attributes(TopicArn=arn)["Attributes"]["KmsMasterKeyId"]


@pytest.mark.parametrize("function", sorted(SETTINGS_BY_FUNCTION))
def test_every_function_environment_holds_what_its_reader_requires_and_nothing_else(
    deployed, function
):
    settings = SETTINGS_BY_FUNCTION[function]
    env = deployed.function_env(function)
    assert required_variables(settings) <= set(env)
    assert set(env) - known_variables(settings) == set()
    settings.from_env(env)  # and every value reads


def test_the_archiver_and_the_lake_writer_each_read_the_stream_whole_batches_at_a_time(
    deployed, aws
):
    lam = aws("lambda")
    assert set(deployed.outputs["function_names"]) == set(SETTINGS_BY_FUNCTION)
    for function in ("archiver", "lake-writer"):
        arn = deployed.function_config(function).arn
        (mapping,) = lam.list_event_source_mappings(FunctionName=arn)["EventSourceMappings"]
        mapping = lam.get_event_source_mapping(UUID=mapping["UUID"])
        assert mapping["EventSourceArn"] == deployed.outputs["stream_arn"]
        assert not mapping.get("BisectBatchOnFunctionError", False)  # a retry sees the same range
        assert mapping["BatchSize"] == 1000
        assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        destination = mapping["DestinationConfig"]["OnFailure"]["Destination"]
        assert destination.endswith(f"{deployed.workspace.function(function)}-dlq")


def _object_writes(aws, deployed, function: str) -> list[str]:
    role = aws("iam").get_role_policy(
        RoleName=deployed.workspace.function(function), PolicyName="least-privilege"
    )
    document = role["PolicyDocument"]
    policy = json.loads(document) if isinstance(document, str) else document
    (writes,) = [s for s in policy["Statement"] if s.get("Sid") == "WriteObjects"]
    resources = writes["Resource"]
    return sorted([resources] if isinstance(resources, str) else resources)


def test_only_the_archiver_may_write_the_archive(deployed, aws):
    buckets = deployed.outputs["bucket_names"]
    prefix = deployed.outputs["archive_prefix"]
    assert _object_writes(aws, deployed, "archiver") == sorted(
        [
            f"arn:aws:s3:::{buckets['archive']}/{prefix}/*",
            f"arn:aws:s3:::{buckets['quarantine']}/archiver/*",
        ]
    )
    assert _object_writes(aws, deployed, "lake-writer") == sorted(
        [f"arn:aws:s3:::{buckets['lake']}/*", f"arn:aws:s3:::{buckets['quarantine']}/lake-writer/*"]
    )
    assert deployed.function_env("archiver")["ARCHIVE_PREFIX"] == prefix


def test_the_functions_run_the_runtime_the_package_is_built_for(deployed):
    declared = LambdaRuntime.declared()
    for function in SETTINGS_BY_FUNCTION:
        config = deployed.client("lambda").get_function_configuration(
            FunctionName=deployed.workspace.function(function)
        )
        assert config["Runtime"] == declared.runtime
        assert config["Architectures"] == [declared.architecture]


def _named(prefix: str, names: list[str]) -> list[str]:
    return [n for n in names if prefix in n]


@pytest.mark.needs("embedded_emulator")
def test_down_stops_the_embedded_emulator_once_no_workspace_holds_anything(tmp_path):
    """The other half of `pipeline down`: destroying a workspace is tested by the demo
    (tests/e2e), which goes up and down beside this session's workspace."""
    record = stack.start_embedded_emulator(tmp_path)
    result = stack.down("nothing-here", state_dir=tmp_path)
    assert not result.destroyed and result.stopped_emulator
    assert stack.running_emulator(tmp_path) is None
    with pytest.raises(ProcessLookupError):
        os.kill(record["pid"], 0)


@pytest.mark.needs("scheduler")
def test_a_schedule_invokes_the_lake_compactor_daily_and_may_do_nothing_else(deployed, aws):
    schedule = aws("scheduler").get_schedule(
        Name=deployed.outputs["lake_compaction_schedule"]["name"]
    )
    compactor = deployed.function_config("lake-compactor")
    assert schedule["ScheduleExpression"] == "cron(30 2 * * ? *)"
    assert schedule["ScheduleExpressionTimezone"] == "UTC"
    assert schedule["State"] == "ENABLED"
    assert schedule["Target"]["Arn"] == compactor.arn
    assert schedule["KmsKeyArn"] == deployed.outputs["kms_key_arn"]
    role = schedule["Target"]["RoleArn"].rsplit("/", 1)[1]
    document = aws("iam").get_role_policy(RoleName=role, PolicyName="least-privilege")
    policy = document["PolicyDocument"]
    policy = json.loads(policy) if isinstance(policy, str) else policy
    (invoke,) = [s for s in policy["Statement"] if "lambda:InvokeFunction" in str(s["Action"])]
    assert invoke["Resource"] == compactor.arn
    lam = aws("lambda")
    assert lam.list_event_source_mappings(FunctionName=compactor.arn)["EventSourceMappings"] == []
    assert compactor.timeout_seconds == 900
