"""The DynamoDB adapter on moto in-process, with faults injected through botocore hooks."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from moto import mock_aws

from pipelines.adapters.dynamo import (
    DynamoWriter,
    UnprocessedItemsError,
    UpdateOutcome,
    WriteRejectedError,
)
from pipelines.consumers.config import RetryPolicy
from pipelines.consumers.projector.projections import ConditionalUpdate, FactPut
from pipelines.errors import TransientError
from tests.faults import HoldBack, Throttle
from tests.kinesis_events import TABLES, create_projection_stores

NO_SDK_RETRIES = Config(retries={"mode": "standard", "max_attempts": 1})


@pytest.fixture
def dynamodb(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        client = boto3.client("dynamodb", config=NO_SDK_RETRIES)
        create_projection_stores(client, boto3.client("s3"))
        yield client


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def writer(dynamodb: Any, sleeps: list[float]) -> DynamoWriter:
    policy = RetryPolicy(max_attempts=4, base_delay=0.1, max_delay=0.3)
    return DynamoWriter(dynamodb, policy, sleep=sleeps.append, jitter=lambda: 1.0)


def _metric(n: int) -> FactPut:
    metric_id = f"api-01#cpu#{n:05d}"
    item = {"metric_id": {"S": metric_id}, "value": {"N": str(n)}}
    return FactPut(TABLES.system_metrics, (metric_id,), item)


def _stored_ids(dynamodb: Any) -> set[str]:
    items = dynamodb.scan(TableName=TABLES.system_metrics)["Items"]
    return {item["metric_id"]["S"] for item in items}


def _version_update(version: int, name: str) -> ConditionalUpdate:
    return ConditionalUpdate(
        TABLES.users,
        {"user_id": {"S": "user-1"}},
        "SET #0 = :0, #v = :v",
        "attribute_not_exists(#k) OR #v < :v",
        {"#k": "user_id", "#v": "aggregate_version", "#0": "name"},
        {":0": {"S": name}, ":v": {"N": str(version)}},
        "aggregate_version",
    )


def test_facts_are_written_at_most_25_per_request(writer: DynamoWriter, dynamodb: Any) -> None:
    sizes: list[int] = []

    def count(params: dict[str, Any], **_: Any) -> None:
        sizes.append(sum(len(r) for r in params["RequestItems"].values()))

    dynamodb.meta.events.register("before-parameter-build.dynamodb.BatchWriteItem", count)
    puts = [_metric(n) for n in range(60)]
    assert writer.put_facts(puts) == 60
    assert _stored_ids(dynamodb) == {p.key[0] for p in puts}
    assert max(sizes) == 25


def test_repeated_facts_are_sent_once(writer: DynamoWriter, dynamodb: Any) -> None:
    puts = [_metric(1), _metric(2), _metric(1)]
    assert writer.put_facts(puts) == 2
    assert len(_stored_ids(dynamodb)) == 2


def test_unprocessed_items_are_retried_until_they_land(
    writer: DynamoWriter, dynamodb: Any, sleeps: list[float]
) -> None:
    HoldBack(dynamodb, lambda item: item["value"]["N"] in {"3", "7"}, times=2)
    puts = [_metric(n) for n in range(10)]
    writer.put_facts(puts)
    assert _stored_ids(dynamodb) == {p.key[0] for p in puts}
    assert sleeps == [0.1, 0.2]  # exponential backoff between the attempts


def test_unprocessed_items_past_the_budget_are_reported_not_dropped(
    writer: DynamoWriter, dynamodb: Any, sleeps: list[float]
) -> None:
    HoldBack(dynamodb, lambda item: item["value"]["N"] == "30")
    puts = [_metric(n) for n in range(60)]
    with pytest.raises(UnprocessedItemsError) as caught:
        writer.put_facts(puts)
    assert isinstance(caught.value, TransientError)
    # the held-back put (second request), and the third request that was never sent
    unwritten = {p.key[0] for p in [puts[30], *puts[50:]]}
    assert {p.key[0] for p in caught.value.unwritten} == unwritten
    assert _stored_ids(dynamodb) == {p.key[0] for p in puts} - unwritten
    assert sleeps == [0.1, 0.2, 0.3]  # capped


def test_throttling_is_retried_with_backoff(
    writer: DynamoWriter, dynamodb: Any, sleeps: list[float]
) -> None:
    throttle = Throttle(dynamodb, "BatchWriteItem", times=3)
    writer.put_facts([_metric(1)])
    assert _stored_ids(dynamodb) == {_metric(1).key[0]}
    assert throttle.calls == 4
    assert len(sleeps) == 3


def test_throttling_past_the_budget_reports_every_unwritten_put(
    writer: DynamoWriter, dynamodb: Any
) -> None:
    Throttle(dynamodb, "BatchWriteItem", code="ThrottlingException")
    with pytest.raises(UnprocessedItemsError) as caught:
        writer.put_facts([_metric(n) for n in range(30)])
    assert len(caught.value.unwritten) == 30
    assert _stored_ids(dynamodb) == set()


def test_a_rejected_write_is_not_retried(writer: DynamoWriter, dynamodb: Any) -> None:
    throttle = Throttle(dynamodb, "BatchWriteItem", code="ValidationException")
    with pytest.raises(WriteRejectedError) as caught:
        writer.put_facts([_metric(1)])
    assert caught.value.code == "ValidationException"
    assert throttle.calls == 1


def test_newer_version_applies_and_older_or_equal_is_skipped(
    writer: DynamoWriter, dynamodb: Any
) -> None:
    assert writer.update(_version_update(2, "two")) is UpdateOutcome.APPLIED
    assert writer.update(_version_update(2, "again")) is UpdateOutcome.DUPLICATE
    assert writer.update(_version_update(1, "one")) is UpdateOutcome.STALE
    assert writer.update(_version_update(3, "three")) is UpdateOutcome.APPLIED
    item = dynamodb.get_item(TableName=TABLES.users, Key={"user_id": {"S": "user-1"}})["Item"]
    assert item["name"] == {"S": "three"}
    assert item["aggregate_version"] == {"N": "3"}


def test_throttled_update_is_retried_then_raised_as_transient(
    writer: DynamoWriter, dynamodb: Any
) -> None:
    Throttle(dynamodb, "UpdateItem", times=1)
    assert writer.update(_version_update(1, "one")) is UpdateOutcome.APPLIED
    Throttle(dynamodb, "UpdateItem")
    with pytest.raises(TransientError):
        writer.update(_version_update(2, "two"))
