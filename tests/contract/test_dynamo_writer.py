"""The DynamoDB adapter, in-process and on the emulator, with faults injected through botocore."""

from __future__ import annotations

from typing import Any

import pytest

from pipelines.adapters.dynamo import (
    MAX_ITEM_BYTES,
    ConditionalUpdate,
    DynamoWriter,
    FactPut,
    UnprocessedItemsError,
    UpdateOutcome,
    WriteRejectedError,
    item_size,
)
from pipelines.adapters.retry import RetryPolicy
from pipelines.errors import MisconfigurationError, TransientError
from tests.contract.conftest import Backend
from tests.faults import HoldBack, Reject, Throttle


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


# --- a rejection is isolated to its item ------------------------------------------------


def _too_large(put: FactPut) -> FactPut:
    item = {**put.item, "blob": {"S": "x" * 450_000}}
    assert item_size(item) > MAX_ITEM_BYTES
    return put._replace(item=item)


def test_a_put_dynamodb_rejects_is_isolated_and_every_other_put_lands(
    writer: DynamoWriter, metric: Any, stored_ids: Any
) -> None:
    puts = [metric(n) for n in range(60)]
    puts[30] = _too_large(puts[30])  # in the second of three chunks
    written = writer.write_facts(puts)
    assert [put for put, _ in written.rejected] == [puts[30]]
    rejection = written.rejected[0][1]
    assert rejection.code == "ValidationException"
    assert "Item size has exceeded the maximum allowed size" in rejection.reason
    assert written.unwritten == [] and written.error is None
    assert len(written.landed) == 59
    assert stored_ids() == {p.key[0] for p in puts} - {puts[30].key[0]}


def test_put_facts_reports_only_the_rejected_puts_as_unwritten(
    writer: DynamoWriter, metric: Any, stored_ids: Any
) -> None:
    puts = [metric(n) for n in range(60)]
    puts[3], puts[57] = _too_large(puts[3]), _too_large(puts[57])
    with pytest.raises(WriteRejectedError) as caught:
        writer.put_facts(puts)
    assert caught.value.unwritten == [puts[3], puts[57]]
    assert len(stored_ids()) == 58


def test_a_sort_key_over_1024_bytes_is_rejected_alone(
    writer: DynamoWriter, tables: dict[str, str], dynamodb: Any
) -> None:
    def activity(sort_key: str) -> FactPut:
        item = {"user_id": {"S": "user-1"}, "timestamp": {"S": sort_key}}
        return FactPut(tables["user_activities"], ("user-1", sort_key), item)

    puts = [activity(f"2026-11-01T00:00:{n:02d}.000Z#e{n}") for n in range(10)]
    puts.insert(4, activity("2026-11-01T00:00:00.000Z#" + "e" * 1_100))
    written = writer.write_facts(puts)
    assert [put for put, _ in written.rejected] == [puts[4]]
    assert "1024" in written.rejected[0][1].reason
    stored = dynamodb.query(
        TableName=tables["user_activities"],
        KeyConditionExpression="user_id = :u",
        ExpressionAttributeValues={":u": {"S": "user-1"}},
    )
    assert stored["Count"] == 10


def test_a_whole_chunk_rejected_for_one_item_is_sent_again_one_put_at_a_time(
    writer: DynamoWriter, dynamodb: Any, metric: Any, stored_ids: Any
) -> None:
    reject = Reject(dynamodb, lambda item: item["value"]["N"] == "7")
    puts = [metric(n) for n in range(30)]
    written = writer.write_facts(puts)
    assert [put for put, _ in written.rejected] == [puts[7]]
    assert stored_ids() == {p.key[0] for p in puts} - {puts[7].key[0]}
    # the rejected chunk, then its 25 puts one at a time; the second chunk once
    assert reject.rejected == 2


def test_a_transient_fault_while_isolating_leaves_the_rest_unwritten_not_rejected(
    writer: DynamoWriter, dynamodb: Any, metric: Any, stored_ids: Any
) -> None:
    Reject(dynamodb, lambda item: item["value"]["N"] == "1")
    HoldBack(dynamodb, lambda item: item["value"]["N"] == "3")
    puts = [metric(n) for n in range(30)]
    written = writer.write_facts(puts)
    assert [put for put, _ in written.rejected] == [puts[1]]
    assert isinstance(written.error, UnprocessedItemsError)
    assert written.unwritten == puts[3:]  # the chunk's rest, and the chunk after it
    assert stored_ids() == {puts[0].key[0], puts[2].key[0]}


def test_an_update_dynamodb_rejects_raises_write_rejected(
    writer: DynamoWriter, version_update: Any, sleeps: list[float]
) -> None:
    assert writer.update(version_update(1, "x" * 300_000)) is UpdateOutcome.APPLIED
    big = version_update(2, "y" * 300_000)
    big = big._replace(
        update="SET #0 = :0, #1 = :1, #v = :v",
        names={**big.names, "#1": "phone"},
        values={**big.values, ":1": {"S": "z" * 200_000}},
    )
    with pytest.raises(WriteRejectedError) as caught:
        writer.update(big)
    assert caught.value.code == "ValidationException"
    assert "size" in caught.value.reason
    assert sleeps == []  # not retried
