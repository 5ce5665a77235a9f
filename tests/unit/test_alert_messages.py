"""Alert messages are strict JSON, whatever an alert's details hold."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from pipelines.adapters.alert_publisher import DETAIL_CHARS_MAX, alert_message, message_json
from pipelines.consumers.alerts.rules import (
    FRAUD_ALERT,
    METRIC_ANOMALY,
    Alert,
    MetricSample,
    metric_alerts,
)


def _strict(text: str) -> Any:
    def refuse(token: str) -> Any:
        raise AssertionError(f"{token} is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_non_finite_numbers_decimals_and_times_become_json_text() -> None:
    details = {
        "value": math.inf,
        "baseline_mean": math.nan,
        "minimum": -math.inf,
        "amount": Decimal("12.3400"),
        "at": datetime(2026, 11, 2, 12, tzinfo=UTC),
        "nested": {"values": [math.nan, 1.5], 7: {Decimal("1")}},
    }
    alert = Alert("metric_spike", METRIC_ANOMALY, "low", "e-1", "web-01", 0, details)
    body = _strict(message_json(alert_message(alert)))
    assert body["value"] == "inf" and body["baseline_mean"] == "nan" and body["minimum"] == "-inf"
    assert body["amount"] == "12.3400"
    assert body["at"] == "2026-11-02T12:00:00.000Z"
    assert body["nested"] == {"values": ["nan", 1.5], "7": ["1"]}


def test_an_infinite_sample_over_its_threshold_still_makes_a_valid_message() -> None:
    (alert,) = metric_alerts(MetricSample("e-1", "web-01", "cpu_usage", math.inf, 0), [])
    assert _strict(message_json(alert_message(alert)))["value"] == "inf"


def test_details_do_not_overwrite_the_alerts_own_fields_and_long_text_is_cut() -> None:
    details = {"alert_id": "forged", "currency": "X" * 5000}
    alert = Alert("fraud_amount", FRAUD_ALERT, "high", "e-1", "user-1", 0, details, "e-0")
    body = _strict(message_json(alert_message(alert)))
    assert body["alert_id"] == "fraud_amount#e-1"
    assert body["raised_by_event_id"] == "e-0"
    assert len(body["currency"]) == DETAIL_CHARS_MAX + 3
