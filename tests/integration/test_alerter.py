"""The alerter's Lambda handler against the embedded emulator: DynamoDB state, SNS, SQS."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from functions.alerter import handler
from pipelines.consumers.alerts.rules import anomaly_severity
from pipelines.consumers.config import AlerterSettings
from pipelines.contract.events import new_event
from pipelines_local.simulator import simulate
from tests.kinesis_events import aggregated_record, kinesis_event, plain_records
from tests.stack import DeployedStack

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)


class Stack:
    """The alerter as deployed, on copies of its tables, bucket and topics, with two queues
    subscribed to the topics: everything, and critical only."""

    def __init__(self, deployed: DeployedStack) -> None:
        self.isolated = deployed.isolated("alerter")
        self.dynamodb = deployed.client("dynamodb")
        self.sns, self.sqs = deployed.client("sns"), deployed.client("sqs")
        self.isolated_client = deployed.client
        self.alerts = self.isolated.tables["alerts"]
        self.anomaly = self.isolated.topics["anomaly_alerts"]
        self.fraud = self.isolated.topics["fraud_alerts"]
        suffix = self.alerts.rsplit("-", 1)[-1]
        self.context = deployed.context("alerter")
        self.everything = self._queue(f"all-alerts-{suffix}", None)
        self.critical = self._queue(f"critical-alerts-{suffix}", {"severity": ["critical"]})

    def _queue(self, name: str, policy: dict[str, Any] | None) -> str:
        url = self.sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        for topic in (self.anomaly, self.fraud):
            attributes = {"RawMessageDelivery": "true"}
            if policy:
                attributes["FilterPolicy"] = json.dumps(policy)
            self.sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes=attributes)
        return url

    def invoke(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        response: dict[str, Any] = handler.lambda_handler(kinesis_event(records), self.context)
        return json.loads(json.dumps(response))  # as Lambda serialises it

    def env(self) -> dict[str, str]:
        return {**self.isolated.env, "POWERTOOLS_TRACE_DISABLED": "true"}

    def messages(self, url: str) -> list[dict[str, Any]]:
        """Drain a queue: every message body (raw delivery: the alert itself)."""
        out = []
        while True:
            page = self.sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
            )
            batch = page.get("Messages", [])
            if not batch:
                return out
            for message in batch:
                body = json.loads(message["Body"])
                attributes = message.get("MessageAttributes", {})
                body["_attributes"] = {k: v["StringValue"] for k, v in attributes.items()}
                out.append(body)
            self.sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)
                ],
            )

    def alert_items(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"TableName": self.alerts}
        while True:
            page = self.dynamodb.scan(**kwargs)
            items.extend(page["Items"])
            if "LastEvaluatedKey" not in page:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


@pytest.fixture
def fresh_stack(
    deployed: DeployedStack, deployed_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[], Stack]]:
    """Make a fresh copy of the alerter's stores and point the handler at it."""

    def make() -> Stack:
        built = Stack(deployed)
        for name, value in built.env().items():
            monkeypatch.setenv(name, value)
        handler.alerter_for.cache_clear()
        return built

    yield make
    handler.alerter_for.cache_clear()


@pytest.fixture
def stack(fresh_stack: Callable[[], Stack]) -> Stack:
    return fresh_stack()


def _metric(value: float, minute: int, *, source: str = "api-01", name: str = "cpu_usage") -> Any:
    body = {"metric_name": name, "value": value, "source": source, "tags": {}}
    return new_event(
        "MetricRecorded", body, producer="test", occurred_at=T0 + timedelta(minutes=minute)
    )


def _payment(
    amount: str,
    second: int,
    *,
    user: str = "user-1",
    status: str = "completed",
    currency: str = "USD",
) -> Any:
    body = {
        "transaction_id": f"txn-{user}-{second}",
        "user_id": user,
        "amount": Decimal(amount),
        "currency": currency,
        "merchant": "Steam",
        "category": "digital_goods",
        "status": status,
    }
    return new_event(
        "TransactionRecorded", body, producer="test", occurred_at=T0 + timedelta(seconds=second)
    )


def _mixed_batch() -> list[Any]:
    """Twelve quiet cpu samples then a critical one; a big payment; a card-testing burst."""
    events = [_metric(20.0 + i % 3, i) for i in range(12)]
    events.append(_metric(97.0, 12))
    events.append(_payment("25000.00", 5, user="user-2"))
    events += [_payment("1.00", 30 * i, status="declined") for i in range(3)]
    return events


def test_the_same_batch_delivered_twice_raises_each_alert_once(stack: Stack) -> None:
    events = _mixed_batch()
    records = plain_records(events)
    for _ in range(2):
        assert stack.invoke(records) == {"batchItemFailures": []}
    assert stack.invoke([aggregated_record(events, 50)]) == {"batchItemFailures": []}
    messages = stack.messages(stack.everything)
    rules = Counter(m["rule"] for m in messages)
    assert rules == {"cpu_usage": 1, "fraud_amount": 1, "fraud_card_testing": 1}
    items = stack.alert_items()
    assert sorted(i["alert_id"]["S"] for i in items) == sorted(m["alert_id"] for m in messages)
    assert all(i["published"]["BOOL"] for i in items)
    for m in messages:
        assert m["_attributes"] == {
            "severity": m["severity"],
            "alert_type": m["alert_type"],
            "rule": m["rule"],
        }
    by_rule = {m["rule"]: m for m in messages}
    assert by_rule["cpu_usage"]["severity"] == "critical"
    assert by_rule["fraud_amount"]["alert_type"] == "fraud_alert"


def test_a_severity_filter_policy_receives_only_that_severity(stack: Stack) -> None:
    assert stack.invoke(plain_records(_mixed_batch())) == {"batchItemFailures": []}
    critical = stack.messages(stack.critical)
    assert [(m["rule"], m["severity"]) for m in critical] == [("cpu_usage", "critical")]
    assert len(stack.messages(stack.everything)) == 3


def test_replayed_events_raise_nothing(stack: Stack) -> None:
    events = _mixed_batch()
    for event in events:
        event["metadata"]["replay_id"] = "replay-2026-11-29"
    assert stack.invoke(plain_records(events)) == {"batchItemFailures": []}
    assert stack.messages(stack.everything) == []
    assert stack.alert_items() == []


def test_a_crash_between_recording_and_publishing_is_repaired_by_redelivery(stack: Stack) -> None:
    event = _payment("12000.00", 1, user="user-9")
    alert_id = f"fraud_amount#{event['metadata']['event_id']}"
    stack.dynamodb.put_item(
        TableName=stack.alerts,
        Item={"alert_id": {"S": alert_id}, "published": {"BOOL": False}},
    )
    assert stack.invoke(plain_records([event])) == {"batchItemFailures": []}
    assert [m["alert_id"] for m in stack.messages(stack.everything)] == [alert_id]
    assert stack.invoke(plain_records([event])) == {"batchItemFailures": []}
    assert stack.messages(stack.everything) == []


def test_a_failed_publish_fails_its_record_and_later_records_of_its_key(stack: Stack) -> None:
    first = _payment("15000.00", 1, user="user-5")
    later = _payment("16000.00", 2, user="user-5")
    other = _payment("17000.00", 3, user="user-6")
    records = plain_records([first, later, other])
    alerter = handler.alerter_for(AlerterSettings.from_env())
    sns_events = alerter.consumer.publisher.sns.meta.events
    calls = {"n": 0}

    def fail_first(**_: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise ConnectionError("simulated SNS outage")
        return None

    sns_events.register("before-call.sns.Publish", fail_first)
    response = stack.invoke(records)
    sns_events.unregister("before-call.sns.Publish", fail_first)
    failed = [f["itemIdentifier"] for f in response["batchItemFailures"]]
    assert failed == [r["kinesis"]["sequenceNumber"] for r in records[:2]]
    assert [m["subject"] for m in stack.messages(stack.everything)] == ["user-6"]
    assert stack.invoke(records[:2] + records[2:]) == {
        "batchItemFailures": []
    }  # Lambda re-delivers
    assert sorted(m["subject"] for m in stack.messages(stack.everything)) == ["user-5", "user-5"]


def test_the_baseline_is_persisted_and_a_redelivered_sample_does_not_move_it(stack: Stack) -> None:
    quiet = [_metric(10.0 + i % 2, i, source="db-01", name="response_time") for i in range(12)]
    records = plain_records(quiet)
    assert stack.invoke(records) == {"batchItemFailures": []}
    key = {"source": {"S": "db-01"}, "metric_name": {"S": "response_time"}}
    before = stack.dynamodb.get_item(TableName=stack.isolated.tables["metric_baselines"], Key=key)[
        "Item"
    ]
    assert before["sample_count"]["N"] == "12"
    assert stack.invoke(records[5:]) == {"batchItemFailures": []}
    assert (
        stack.dynamodb.get_item(TableName=stack.isolated.tables["metric_baselines"], Key=key)[
            "Item"
        ]
        == before
    )
    # A later invocation sees the stored baseline: a spike below the threshold alerts.
    assert stack.invoke(
        plain_records([_metric(60.0, 20, source="db-01", name="response_time")], 40)
    ) == {"batchItemFailures": []}
    (message,) = stack.messages(stack.everything)
    assert (message["rule"], message["severity"]) == ("metric_spike", "low")


def test_velocity_uses_the_history_of_earlier_invocations(stack: Stack) -> None:
    payments = [_payment("20.00", 60 * i, user="user-7") for i in range(7)]
    for n, payment in enumerate(payments):
        assert stack.invoke(plain_records([payment], n + 1)) == {"batchItemFailures": []}
    (message,) = stack.messages(stack.everything)
    assert message["rule"] == "fraud_velocity"
    assert message["event_id"] == payments[5]["metadata"]["event_id"]


def test_a_simulated_workload_raises_every_injected_case_exactly_once(stack: Stack) -> None:
    workload = simulate(3000, seed=1)
    events = workload.events
    chunks = [events[i : i + 500] for i in range(0, len(events), 500)]
    records = [aggregated_record(chunk, n) for n, chunk in enumerate(chunks, start=1)]
    assert stack.invoke(records) == {"batchItemFailures": []}  # one batch: six KPL aggregates
    assert stack.invoke(records[-1:]) == {"batchItemFailures": []}  # a re-delivery changes nothing
    raised: dict[str, list[str]] = {rule: [] for rule in workload.injected}
    severities = {}
    for message in stack.messages(stack.everything):
        raised[message["rule"]].append(message["event_id"])
        severities[message["event_id"]] = message["severity"]
    assert {r: sorted(ids) for r, ids in raised.items()} == {
        r: sorted(ids) for r, ids in workload.injected.items()
    }
    by_id = {e["metadata"]["event_id"]: e for e in events}
    for rule, ids in workload.injected.items():
        for event_id in ids:
            event = by_id[event_id]
            expected = (
                "high"
                if rule.startswith("fraud_")
                else anomaly_severity(event["metric_name"], event["value"])
            )
            assert severities[event_id] == expected, (rule, event_id)
    assert len(stack.alert_items()) == sum(len(ids) for ids in workload.injected.values())


def test_a_late_transaction_that_completes_a_window_raises_one_velocity_alert(
    fresh_stack: Callable[[], Stack],
) -> None:
    payments = [_payment("20.00", 60 * i, user="user-10") for i in range(6)]
    arrival = [*payments[:2], *payments[3:], payments[2]]  # minute 2 arrives last
    late = fresh_stack()
    for n, payment in enumerate(arrival, start=1):  # one invocation each, in shard order
        assert late.invoke(plain_records([payment], n)) == {"batchItemFailures": []}
    assert late.invoke(plain_records(arrival[-1:], 6)) == {"batchItemFailures": []}  # again
    (alert,) = late.messages(late.everything)
    assert alert["rule"] == "fraud_velocity"
    assert alert["event_id"] == payments[5]["metadata"]["event_id"]
    assert alert["raised_by_event_id"] == payments[2]["metadata"]["event_id"]
    assert alert["transactions_in_window"] == 6

    together = fresh_stack()  # the control: the same events, in one batch
    assert together.invoke(plain_records(arrival)) == {"batchItemFailures": []}
    (same,) = together.messages(together.everything)
    assert same["alert_id"] == alert["alert_id"]
    assert [i["alert_id"]["S"] for i in together.alert_items()] == [alert["alert_id"]]


def test_a_value_dynamodb_rejects_is_quarantined_and_its_neighbours_go_on(stack: Stack) -> None:
    user = "user-11"
    payments = [_payment("20.00", 60 * i, user=user) for i in range(6)]
    big = _payment("15000.00", 400, user=user)
    rejected = _payment("30.00", 130, user=user, currency="X" * 420_000)  # item over 400 KB
    events = [*payments[:3], rejected, *payments[3:], big]
    records = plain_records(events)

    assert stack.invoke(records) == {"batchItemFailures": []}
    assert stack.invoke(records) == {"batchItemFailures": []}  # a re-delivery: the same

    rules = Counter(m["rule"] for m in stack.messages(stack.everything))
    assert rules == {"fraud_velocity": 1, "fraud_amount": 1}
    s3 = stack.isolated_client("s3")
    bucket = stack.isolated.buckets["quarantine"]
    listed = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
    sidecars = [o["Key"] for o in listed if o["Key"].endswith(".json")]
    assert sidecars  # kept once per delivery, under the record's coordinates
    sidecar = json.loads(s3.get_object(Bucket=bucket, Key=sidecars[0])["Body"].read())
    assert sidecar["code"] == "invalid_event"
    assert "recent_transactions" in sidecar["reason"]
    assert "ValidationException" in sidecar["reason"]
    assert "largest field is currency" in sidecar["reason"]
    kept = stack.dynamodb.query(
        TableName=stack.isolated.tables["recent_transactions"],
        KeyConditionExpression="user_id = :u",
        ExpressionAttributeValues={":u": {"S": user}},
    )["Items"]
    stored = {i["event_id"]["S"] for i in kept if "rule" not in i and "event_id" in i}
    assert rejected["metadata"]["event_id"] not in stored
    assert {e["metadata"]["event_id"] for e in [*payments, big]} <= stored
