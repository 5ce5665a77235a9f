"""Tiny Lambda handlers the runtime's tests name in their function configurations.

Each records what it was called with in :data:`CALLS` (the runtime invokes in-process), and
reads how to behave from its function's environment variables, as a deployed handler would:

* ``FAIL_DATA`` - comma-separated record payloads (Kinesis data or SQS body) that fail.
* ``FAIL_ONCE`` - ``1`` to fail each of those only the first time it is seen.
"""

from __future__ import annotations

import base64
import contextlib
import os
from dataclasses import dataclass, field
from typing import Any

CALLS: list[Call] = []
_FAILED_BEFORE: set[str] = set()


@dataclass
class Call:
    event: dict[str, Any]
    function_name: str
    request_id: str
    remaining_ms: int
    env: dict[str, str]
    decoded: list[str] = field(default_factory=list)

    @property
    def payloads(self) -> list[str]:
        return [payload_of(record) for record in self.event["Records"]]


def reset() -> None:
    CALLS.clear()
    _FAILED_BEFORE.clear()


def payload_of(record: dict[str, Any]) -> str:
    if "kinesis" in record:
        return base64.b64decode(record["kinesis"]["data"]).decode()
    return str(record["body"])


def identifier_of(record: dict[str, Any]) -> str:
    if "kinesis" in record:
        return str(record["kinesis"]["sequenceNumber"])
    return str(record["messageId"])


def _record_call(event: dict[str, Any], context: Any) -> Call:
    call = Call(
        event=event,
        function_name=context.function_name,
        request_id=context.aws_request_id,
        remaining_ms=context.get_remaining_time_in_millis(),
        env=dict(os.environ),
    )
    CALLS.append(call)
    return call


def _failing(record: dict[str, Any]) -> bool:
    fail = {p for p in os.environ.get("FAIL_DATA", "").split(",") if p}
    payload = payload_of(record)
    if payload not in fail:
        return False
    if os.environ.get("FAIL_ONCE") == "1":
        if payload in _FAILED_BEFORE:
            return False
        _FAILED_BEFORE.add(payload)
    return True


def succeed(event: dict[str, Any], context: Any) -> None:
    _record_call(event, context)


def raise_on_failing(event: dict[str, Any], context: Any) -> None:
    """A function error when any record of the batch is failing."""
    _record_call(event, context)
    failing = [payload_of(r) for r in event["Records"] if _failing(r)]
    if failing:
        raise RuntimeError(f"cannot process {failing}")


def report_failing(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """A partial batch response naming every failing record."""
    _record_call(event, context)
    return {
        "batchItemFailures": [
            {"itemIdentifier": identifier_of(r)} for r in event["Records"] if _failing(r)
        ]
    }


def report_empty_identifier(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """A malformed partial batch response (the first time): an empty identifier."""
    _record_call(event, context)
    if len(CALLS) == 1:
        return {"batchItemFailures": [{"itemIdentifier": ""}]}
    return {"batchItemFailures": []}


def report_unknown_identifier(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """A partial batch response (the first time) naming a record not in the batch."""
    _record_call(event, context)
    if len(CALLS) == 1:
        return {"batchItemFailures": [{"itemIdentifier": "999999999"}]}
    return {"batchItemFailures": None}


def collect_events(event: dict[str, Any], context: Any) -> None:
    """Decode every event of the batch (KPL aggregates included), as the consumers do."""
    from pipelines.stream.records import decode_lambda_record

    call = _record_call(event, context)
    call.decoded = [
        delivered.event.event_id
        for record in event["Records"]
        for delivered in decode_lambda_record(record).events
    ]


def quarantine_poison(event: dict[str, Any], context: Any) -> None:
    """Succeeds, counting each record whose payload is ``poison`` as a quarantined event in
    the ``EventsQuarantined`` metric, as the consumers do (EMF on standard output)."""
    from aws_lambda_powertools import Metrics

    from pipelines.consumers.metrics import EVENTS_QUARANTINED

    _record_call(event, context)
    poison = 0
    for record in event["Records"]:
        with contextlib.suppress(UnicodeDecodeError):  # aggregated: binary, never poison here
            poison += payload_of(record) == "poison"
    metrics = Metrics(namespace="RuntimeTests")
    metrics.add_metric(name=EVENTS_QUARANTINED, unit="Count", value=poison)
    metrics.flush_metrics()
