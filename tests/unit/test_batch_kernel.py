"""The batch kernel, once for every consumer: partial responses, per-key order, poison.

A scripted consumer stands in for the projector, lake writer and alerter: it applies events
in batch order (``batch.admit``) and fails the records holding an event it is told to fail.
What it sees and what Lambda is told are the kernel's doing alone.
"""

from __future__ import annotations

from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch import process_partial_response

from pipelines.consumers.batch import Batch, KeyOrderError, KinesisBatchKernel
from pipelines.consumers.metrics import (
    EVENTS_QUARANTINED,
    EVENTS_SKIPPED_DUPLICATE,
    RECORDS_BLOCKED,
    RECORDS_FAILED,
)
from pipelines.contract.codec import encode_event
from pipelines.contract.events import new_event
from pipelines.errors import MisconfigurationError, PoisonRecordError, TransientError
from pipelines.stream.records import UserRecord
from tests.kinesis_events import aggregated_record, kinesis_event, kinesis_record, plain_records

APPLIED = "EventsApplied"


def activity(user: str) -> dict[str, Any]:
    return new_event(
        "UserActivityRecorded", {"user_id": user, "activity_type": "login"}, producer="t"
    )


class Scripted:
    """Applies events in order; an event whose id is in ``failing`` fails its record."""

    metric_names = (APPLIED,)

    def __init__(self, failing: set[str] = frozenset(), raises: BaseException | None = None):
        self.failing = set(failing)
        self.raises = raises
        self.applied: list[str] = []

    def consume(self, batch: Batch) -> None:
        if self.raises is not None:
            raise self.raises
        for record in batch.records:
            if not batch.admit(record):
                continue
            for delivered in record.events:
                if delivered.event.event_id in self.failing:
                    batch.fail(record, TransientError("write did not land"))
                    break
                self.applied.append(delivered.event.event_id)
                batch.counts.add(APPLIED)


class Kept:
    def __init__(self, fails: bool = False) -> None:
        self.kept: list[tuple[UserRecord, PoisonRecordError]] = []
        self.fails = fails

    def keep(self, record: UserRecord, error: PoisonRecordError) -> str:
        if self.fails:
            raise TransientError("quarantine unavailable")
        self.kept.append((record, error))
        return f"q/{record.sequence_number}-{record.sub_sequence_number}"


class Recorded:
    def __init__(self) -> None:
        self.values: dict[str, float] = {}

    def add_metric(self, name: str, unit: Any, value: float) -> None:
        self.values[name] = self.values.get(name, 0) + value


def kernel(consumer: Scripted, quarantine: Kept | None = None, **kw: Any) -> KinesisBatchKernel:
    return KinesisBatchKernel(consumer, quarantine or Kept(), **kw)


def respond(k: KinesisBatchKernel, records: list[dict[str, Any]]) -> dict[str, Any]:
    """What the Lambda handler returns, through Powertools."""
    return dict(
        process_partial_response(
            event=kinesis_event(records), record_handler=k.consumer.consume, processor=k
        )
    )


def sequence(record: dict[str, Any]) -> str:
    return str(record["kinesis"]["sequenceNumber"])


def test_a_clean_batch_reports_no_failures() -> None:
    events = [activity(f"u{i}") for i in range(5)]
    consumer = Scripted()
    assert respond(kernel(consumer), plain_records(events)) == {"batchItemFailures": []}
    assert consumer.applied == [e["metadata"]["event_id"] for e in events]


def test_failures_are_reported_by_sequence_number_and_block_later_records_of_their_key() -> None:
    a1, b1, a2, c1, b2 = (activity(u) for u in ("a", "b", "a", "c", "b"))
    records = plain_records([a1, b1, a2, c1, b2])
    consumer = Scripted(failing={a1["metadata"]["event_id"]})
    metrics = Recorded()

    response = respond(kernel(consumer, metrics=metrics), records)

    assert response == {
        "batchItemFailures": [
            {"itemIdentifier": sequence(records[0])},
            {"itemIdentifier": sequence(records[2])},
        ]
    }
    ids = [e["metadata"]["event_id"] for e in (b1, c1, b2)]
    assert consumer.applied == ids  # a2 was never applied: a1 failed before it
    assert metrics.values[RECORDS_FAILED] == 2
    assert metrics.values[RECORDS_BLOCKED] == 1


def test_a_failed_aggregate_blocks_every_key_it_holds() -> None:
    a, b = activity("a"), activity("b")
    records = [
        aggregated_record([a, b], 1),
        *plain_records([activity("b"), activity("d")], first=2),
    ]
    outcome = kernel(Scripted(failing={a["metadata"]["event_id"]})).process_batch(records)
    assert [type(e) for e in outcome.errors] == [TransientError, KeyOrderError, type(None)]


def test_a_failure_after_a_record_blocks_only_later_records() -> None:
    early, late = activity("a"), activity("a")
    records = plain_records([early, late])
    outcome = kernel(Scripted(failing={late["metadata"]["event_id"]})).process_batch(records)
    assert outcome.errors[0] is None
    assert isinstance(outcome.errors[1], TransientError)


def test_one_poison_record_among_good_ones_is_quarantined_with_its_bytes() -> None:
    good = [activity(f"u{i}") for i in range(3)]
    garbage = b"\xc3\x01not an event"
    records = [
        *plain_records(good[:2]),
        kinesis_record(garbage, "u9", 3),
        *plain_records(good[2:], first=4),
    ]
    quarantine, consumer = Kept(), Scripted()

    outcome = kernel(consumer, quarantine).process_batch(records)

    assert outcome.errors == [None] * 4
    assert consumer.applied == [e["metadata"]["event_id"] for e in good]
    [(record, error)] = quarantine.kept
    assert (record.data, record.partition_key, error.code) == (garbage, "u9", "unknown_schema")
    assert outcome.counts[EVENTS_QUARANTINED] == 1
    assert outcome.counts.by(EVENTS_QUARANTINED) == {"unknown": 1}


def test_poison_inside_an_aggregate_is_quarantined_and_its_neighbours_applied() -> None:
    a, b = activity("a"), activity("b")
    record = aggregated_record([("a", encode_event(a)), ("x", b"junk"), ("b", encode_event(b))], 1)
    quarantine, consumer = Kept(), Scripted()
    assert kernel(consumer, quarantine).process_batch([record]).errors == [None]
    assert consumer.applied == [a["metadata"]["event_id"], b["metadata"]["event_id"]]
    assert [(r.sub_sequence_number, r.data) for r, _ in quarantine.kept] == [(1, b"junk")]


def test_poison_the_quarantine_cannot_keep_fails_its_record_and_blocks_its_key() -> None:
    records = [
        kinesis_record(b"junk", "a", 1),
        *plain_records([activity("a"), activity("b")], first=2),
    ]
    outcome = kernel(Scripted(), Kept(fails=True)).process_batch(records)
    assert isinstance(outcome.errors[0], TransientError)
    assert isinstance(outcome.errors[1], KeyOrderError)
    assert outcome.errors[2] is None


def test_an_event_repeated_in_a_batch_reaches_the_consumer_once() -> None:
    event = activity("a")
    consumer = Scripted()
    outcome = kernel(consumer).process_batch(plain_records([event, event]))
    assert consumer.applied == [event["metadata"]["event_id"]]
    assert outcome.counts.by(EVENTS_SKIPPED_DUPLICATE) == {"UserActivityRecorded": 1}


def test_a_malformed_lambda_record_fails_alone() -> None:
    records = plain_records([activity("a"), activity("b")])
    del records[0]["kinesis"]["data"]
    outcome = kernel(Scripted()).process_batch(records)
    assert isinstance(outcome.errors[0], KeyError)
    assert outcome.errors[1] is None


def test_a_misconfiguration_fails_the_invocation_loudly() -> None:
    consumer = Scripted(raises=MisconfigurationError("AccessDenied on the users table"))
    with pytest.raises(MisconfigurationError):
        respond(kernel(consumer), plain_records([activity("a")]))


def test_every_metric_is_emitted_every_batch_zeros_included() -> None:
    metrics = Recorded()
    kernel(Scripted(), metrics=metrics).process_batch(plain_records([activity("a")]))
    assert metrics.values == {
        APPLIED: 1,
        EVENTS_QUARANTINED: 0,
        EVENTS_SKIPPED_DUPLICATE: 0,
        RECORDS_FAILED: 0,
        RECORDS_BLOCKED: 0,
    }


def test_the_kernel_is_reused_across_invocations_without_carrying_state() -> None:
    failing = activity("b")
    k = kernel(Scripted(failing={failing["metadata"]["event_id"]}))
    first = plain_records([failing])
    assert respond(k, first) == {"batchItemFailures": [{"itemIdentifier": sequence(first[0])}]}
    second = plain_records([activity("b")], first=5)
    assert respond(k, second) == {"batchItemFailures": []}
