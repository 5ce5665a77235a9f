"""Alerts recorded once and published to SNS, on every backend."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from pipelines.adapters.alert_publisher import AlertPublisher, PublishOutcome
from pipelines.consumers.alerts.rules import FRAUD_ALERT, METRIC_ANOMALY, Alert
from pipelines.errors import MisconfigurationError
from tests.contract.conftest import Backend
from tests.stack import Isolated

ALERT = Alert("fraud_amount", FRAUD_ALERT, "high", "e-1", "user-1", 1_793_620_800_000, {"n": 1})


@pytest.fixture
def stores(backend: Backend) -> Isolated:
    return backend.isolated("alerter")


def publisher(backend: Backend, stores: Isolated, fraud_topic: str | None = None) -> AlertPublisher:
    topics = {
        METRIC_ANOMALY: stores.topics["anomaly_alerts"],
        FRAUD_ALERT: fraud_topic or stores.topics["fraud_alerts"],
    }
    return AlertPublisher(
        backend.client("dynamodb"), backend.client("sns"), stores.tables["alerts"], topics
    )


def test_an_alert_is_published_once_and_recorded_as_published(
    backend: Backend, stores: Isolated
) -> None:
    alerts = publisher(backend, stores)

    assert alerts.publish(ALERT) is PublishOutcome.PUBLISHED
    assert alerts.publish(ALERT) is PublishOutcome.DUPLICATE

    item = backend.client("dynamodb").get_item(
        TableName=stores.tables["alerts"], Key={"alert_id": {"S": ALERT.alert_id}}
    )["Item"]
    assert item["published"] == {"BOOL": True}
    assert item["message_id"]["S"]


def test_an_alert_recorded_but_never_published_is_published_on_redelivery(
    backend: Backend, stores: Isolated
) -> None:
    backend.client("dynamodb").put_item(
        TableName=stores.tables["alerts"],
        Item={"alert_id": {"S": ALERT.alert_id}, "published": {"BOOL": False}},
    )
    assert publisher(backend, stores).publish(ALERT) is PublishOutcome.REPUBLISHED


def test_a_missing_topic_is_a_misconfiguration(backend: Backend, stores: Isolated) -> None:
    gone = stores.topics["fraud_alerts"] + "-gone"
    with pytest.raises(MisconfigurationError):
        publisher(backend, stores, fraud_topic=gone).publish(ALERT)


def test_an_alert_with_non_finite_details_is_recorded_as_strict_json(
    backend: Backend, stores: Isolated
) -> None:
    alert = Alert(
        "cpu_usage",
        METRIC_ANOMALY,
        "critical",
        "e-2",
        "web-01",
        1_793_620_800_000,
        {"value": math.inf, "baseline_mean": math.nan},
    )
    assert publisher(backend, stores).publish(alert) is PublishOutcome.PUBLISHED
    item = backend.client("dynamodb").get_item(
        TableName=stores.tables["alerts"], Key={"alert_id": {"S": alert.alert_id}}
    )["Item"]

    def refuse(token: str) -> Any:
        raise AssertionError(f"{token} is not JSON")

    message = json.loads(item["message"]["S"], parse_constant=refuse)
    assert (message["value"], message["baseline_mean"]) == ("inf", "nan")
