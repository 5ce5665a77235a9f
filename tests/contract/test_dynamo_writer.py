"""The DynamoDB adapter, in-process and on the emulator, with faults injected through botocore."""

from __future__ import annotations

from typing import Any

import pytest

from pipelines.adapters.dynamo import (
    ConditionalUpdate,
    DynamoWriter,
    FactPut,
    UnprocessedItemsError,
    UpdateOutcome,
    WriteRejectedError,
)
from pipelines.adapters.retry import RetryPolicy
from pipelines.errors import MisconfigurationError, TransientError
from tests.contract.conftest import Backend
from tests.faults import HoldBack, Throttle


@pytest.fixture
def tables(backend: Backend) -> dict[str, str]:
    """Copies of the projector's tables, as Terraform defined them."""
    return backend.isolated("projector").tables


@pytest.fixture
def dynamodb(backend: Backend, tables: dict[str, str]) -> Any:
    return backend.client("dynamodb")


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def writer(dynamodb: Any, sleeps: list[float]) -> DynamoWriter:
    policy = RetryPolicy(max_attempts=4, base_delay=0.1, max_delay=0.3)
    return DynamoWriter(dynamodb, policy, sleep=sleeps.append, jitter=lambda: 1.0)


@pytest.fixture
def metric(tables: dict[str, str]) -> Any:
    def make(n: int) -> FactPut:
        metric_id = f"api-01#cpu#{n:05d}"
        item = {"metric_id": {"S": metric_id}, "value": {"N": str(n)}}
        return FactPut(tables["system_metrics"], (metric_id,), item)

    return make


@pytest.fixture
def stored_ids(dynamodb: Any, tables: dict[str, str]) -> Any:
    def read() -> set[str]:
        items = dynamodb.scan(TableName=tables["system_metrics"])["Items"]
        return {item["metric_id"]["S"] for item in items}

    return read


@pytest.fixture
def version_update(tables: dict[str, str]) -> Any:
    def make(version: int, name: str) -> ConditionalUpdate:
        return ConditionalUpdate(
            tables["users"],
            {"user_id": {"S": "user-1"}},
            "SET #0 = :0, #v = :v",
            "attribute_not_exists(#k) OR #v < :v",
            {"#k": "user_id", "#v": "aggregate_version", "#0": "name"},
            {":0": {"S": name}, ":v": {"N": str(version)}},
            "aggregate_version",
        )

    return make


def test_facts_are_written_at_most_25_per_request(
    writer: DynamoWriter, dynamodb: Any, metric: Any, stored_ids: Any, version_update: Any
) -> None:
    sizes: list[int] = []

    def count(params: dict[str, Any], **_: Any) -> None:
        sizes.append(sum(len(r) for r in params["RequestItems"].values()))

    dynamodb.meta.events.register("before-parameter-build.dynamodb.BatchWriteItem", count)
    puts = [metric(n) for n in range(60)]
    assert writer.put_facts(puts) == 60
    assert stored_ids() == {p.key[0] for p in puts}
    assert max(sizes) == 25


def test_repeated_facts_are_sent_once(
    writer: DynamoWriter, dynamodb: Any, metric: Any, stored_ids: Any, version_update: Any
) -> None:
    puts = [metric(1), metric(2), metric(1)]
    assert writer.put_facts(puts) == 2
    assert len(stored_ids()) == 2


def test_unprocessed_items_are_retried_until_they_land(
    writer: DynamoWriter,
    dynamodb: Any,
    sleeps: list[float],
    metric: Any,
    stored_ids: Any,
    version_update: Any,
) -> None:
    HoldBack(dynamodb, lambda item: item["value"]["N"] in {"3", "7"}, times=2)
    puts = [metric(n) for n in range(10)]
    writer.put_facts(puts)
    assert stored_ids() == {p.key[0] for p in puts}
    assert sleeps == [0.1, 0.2]  # exponential backoff between the attempts


def test_unprocessed_items_past_the_budget_are_reported_not_dropped(
    writer: DynamoWriter,
    dynamodb: Any,
    sleeps: list[float],
    metric: Any,
    stored_ids: Any,
    version_update: Any,
) -> None:
    HoldBack(dynamodb, lambda item: item["value"]["N"] == "30")
    puts = [metric(n) for n in range(60)]
    with pytest.raises(UnprocessedItemsError) as caught:
        writer.put_facts(puts)
    assert isinstance(caught.value, TransientError)
    # the held-back put (second request), and the third request that was never sent
    unwritten = {p.key[0] for p in [puts[30], *puts[50:]]}
    assert {p.key[0] for p in caught.value.unwritten} == unwritten
    assert stored_ids() == {p.key[0] for p in puts} - unwritten
    assert sleeps == [0.1, 0.2, 0.3]  # capped


def test_throttling_is_retried_with_backoff(
    writer: DynamoWriter,
    dynamodb: Any,
    sleeps: list[float],
    metric: Any,
    stored_ids: Any,
    version_update: Any,
) -> None:
    throttle = Throttle(dynamodb, "BatchWriteItem", times=3)
    writer.put_facts([metric(1)])
    assert stored_ids() == {metric(1).key[0]}
    assert throttle.calls == 4
    assert len(sleeps) == 3


def test_throttling_past_the_budget_reports_every_unwritten_put(
    writer: DynamoWriter, dynamodb: Any, metric: Any, stored_ids: Any, version_update: Any
) -> None:
    Throttle(dynamodb, "BatchWriteItem", code="ThrottlingException")
    with pytest.raises(UnprocessedItemsError) as caught:
        writer.put_facts([metric(n) for n in range(30)])
    assert len(caught.value.unwritten) == 30
    assert stored_ids() == set()


def test_a_rejected_write_is_not_retried(
    writer: DynamoWriter, dynamodb: Any, metric: Any, stored_ids: Any, version_update: Any
) -> None:
    throttle = Throttle(dynamodb, "BatchWriteItem", code="ValidationException")
    with pytest.raises(WriteRejectedError) as caught:
        writer.put_facts([metric(1)])
    assert caught.value.code == "ValidationException"
    assert throttle.calls == 1


def test_newer_version_applies_and_older_or_equal_is_skipped(
    writer: DynamoWriter, dynamodb: Any, metric: Any, stored_ids: Any, version_update: Any
) -> None:
    assert writer.update(version_update(2, "two")) is UpdateOutcome.APPLIED
    assert writer.update(version_update(2, "again")) is UpdateOutcome.DUPLICATE
    assert writer.update(version_update(1, "one")) is UpdateOutcome.STALE
    assert writer.update(version_update(3, "three")) is UpdateOutcome.APPLIED
    item = dynamodb.get_item(
        TableName=version_update(1, "").table, Key={"user_id": {"S": "user-1"}}
    )["Item"]
    assert item["name"] == {"S": "three"}
    assert item["aggregate_version"] == {"N": "3"}


def test_throttled_update_is_retried_then_raised_as_transient(
    writer: DynamoWriter, dynamodb: Any, metric: Any, stored_ids: Any, version_update: Any
) -> None:
    Throttle(dynamodb, "UpdateItem", times=1)
    assert writer.update(version_update(1, "one")) is UpdateOutcome.APPLIED
    Throttle(dynamodb, "UpdateItem")
    with pytest.raises(TransientError):
        writer.update(version_update(2, "two"))


def test_a_missing_table_is_a_misconfiguration_not_a_retry(
    writer: DynamoWriter, tables: dict[str, str], sleeps: list[float]
) -> None:
    missing = FactPut(f"{tables['system_metrics']}-gone", ("x",), {"metric_id": {"S": "x"}})
    with pytest.raises(MisconfigurationError, match="ResourceNotFoundException"):
        writer.put_facts([missing])
    assert sleeps == []
