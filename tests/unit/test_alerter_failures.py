"""The alerter's failures, isolated: a rejected value is one event's poison, a transient
fault its records' failure, a misconfiguration the invocation's. The state adapters are
stand-ins here (DynamoDB does not reject a baseline the planning lets through); the
emulator runs the real ones in ``tests/integration/test_alerter.py``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pipelines.adapters.alert_publisher import AlertRejectedError, PublishOutcome
from pipelines.adapters.alert_state import Series, StoredBaseline, TransactionHistory
from pipelines.adapters.dynamo import FactPut, WriteRejectedError
from pipelines.consumers.alerts.alerter import Alerter
from pipelines.consumers.alerts.rules import Alert, Baseline, MetricSample
from pipelines.consumers.batch import KinesisBatchKernel
from pipelines.contract.codec import encode_event
from pipelines.contract.events import new_event
from pipelines.errors import MisconfigurationError, PoisonRecordError, TransientError
from pipelines.stream.records import UserRecord
from tests.kinesis_events import plain_records

AT = datetime(2026, 11, 2, tzinfo=UTC)


def _metric(value: float, minute: int, source: str) -> dict[str, Any]:
    body = {"metric_name": "cpu_usage", "value": value, "source": source, "tags": {}}
    return new_event(
        "MetricRecorded", body, producer="test", occurred_at=AT + timedelta(minutes=minute)
    )


class Baselines:
    """Baselines in memory; saving a sample of a value in ``rejects`` raises what DynamoDB
    raises for a value it cannot hold, or ``error`` for any save."""

    def __init__(self, rejects: set[float] = frozenset(), error: Exception | None = None):
        self.rejects = set(rejects)
        self.error = error
        self.stored: dict[Series, Baseline] = {}

    def load(self, series: Iterable[Series]) -> dict[Series, StoredBaseline]:
        return {s: StoredBaseline(self.stored.get(s, Baseline()), 1) for s in series}

    def save(
        self, series: Series, stored: StoredBaseline, samples: Sequence[MetricSample]
    ) -> StoredBaseline:
        if self.error is not None:
            raise self.error
        if any(s.value in self.rejects for s in samples):
            raise WriteRejectedError(
                "PutItem rejected (ValidationException)", "ValidationException"
            )
        merged = self.stored.get(series, Baseline()).merged(samples)
        self.stored[series] = merged
        return StoredBaseline(merged, 2)


class NoTransactions:
    def transactions(self, keys: Iterable[Any]) -> dict[Any, list[Any]]:
        return {}

    def history(self, user: str, lo: int, hi: int) -> TransactionHistory:
        return TransactionHistory([], [], (lo, hi))

    def record(self, puts: Sequence[FactPut]) -> None:
        return None


class Publisher:
    def __init__(self) -> None:
        self.sent: list[Alert] = []

    def publish(self, alert: Alert) -> PublishOutcome:
        self.sent.append(alert)
        return PublishOutcome.PUBLISHED


class Kept:
    def __init__(self) -> None:
        self.kept: list[tuple[UserRecord, PoisonRecordError]] = []

    def keep(self, record: UserRecord, error: PoisonRecordError) -> str:
        self.kept.append((record, error))
        return f"q/{record.sequence_number}"


def _kernel(baselines: Baselines) -> tuple[KinesisBatchKernel, Kept]:
    kept = Kept()
    alerter = Alerter(baselines, NoTransactions(), Publisher(), concurrency=1)  # type: ignore[arg-type]
    return KinesisBatchKernel(alerter, kept), kept


def test_a_sample_whose_baseline_dynamodb_rejects_is_quarantined_alone() -> None:
    events = [_metric(20.0 + i, i, "web-01") for i in range(5)]
    events.insert(2, _metric(13.0, 9, "web-01"))  # the value this baseline cannot take
    events.append(_metric(30.0, 1, "web-02"))
    baselines = Baselines(rejects={13.0})
    kernel, kept = _kernel(baselines)

    outcome = kernel.process_batch(plain_records(events))

    assert outcome.errors == [None] * len(events)
    ((record, error),) = kept.kept
    assert record.data == encode_event(events[2])
    assert "value" in error.reason and "ValidationException" in error.reason
    assert [s[2] for s in baselines.stored[("web-01", "cpu_usage")].samples] == [
        20.0,
        21.0,
        22.0,
        23.0,
        24.0,
    ]
    assert ("web-02", "cpu_usage") in baselines.stored


def test_a_transient_save_fails_the_records_of_its_series_and_a_misconfiguration_raises() -> None:
    events = [_metric(20.0, 1, "web-01"), _metric(20.0, 2, "web-01")]
    kernel, kept = _kernel(Baselines(error=TransientError("throttled")))
    outcome = kernel.process_batch(plain_records(events))
    assert all(isinstance(e, TransientError) for e in outcome.errors)
    assert kept.kept == []
    kernel, _ = _kernel(Baselines(error=MisconfigurationError("no such table")))
    with pytest.raises(MisconfigurationError):
        kernel.process_batch(plain_records(events))


class RejectingPublisher(Publisher):
    """SNS refuses the alerts of one event for what they hold."""

    def __init__(self, refused: str) -> None:
        super().__init__()
        self.refused = refused

    def publish(self, alert: Alert) -> PublishOutcome:
        if alert.event_id == self.refused:
            raise AlertRejectedError("Publish rejected (InvalidParameter)", "InvalidParameter")
        return super().publish(alert)


def test_an_alert_sns_rejects_quarantines_the_event_that_raised_it() -> None:
    events = [_metric(97.0, 1, "web-01"), _metric(98.0, 2, "web-01"), _metric(99.0, 1, "db-01")]
    publisher = RejectingPublisher(events[0]["metadata"]["event_id"])
    baselines = Baselines()
    kept = Kept()
    alerter = Alerter(baselines, NoTransactions(), publisher, concurrency=1)  # type: ignore[arg-type]

    outcome = KinesisBatchKernel(alerter, kept).process_batch(plain_records(events))

    assert outcome.errors == [None, None, None]
    ((record, error),) = kept.kept
    assert record.data == encode_event(events[0]) and "InvalidParameter" in error.reason
    assert [a.event_id for a in publisher.sent] == [_id(e) for e in events[1:]]
    assert [s[1] for s in baselines.stored[("web-01", "cpu_usage")].samples] == [_id(events[1])]


def _id(event: dict[str, Any]) -> str:
    event_id: str = event["metadata"]["event_id"]
    return event_id
