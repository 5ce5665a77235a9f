"""The projector's handler, wrapped so that delivery misbehaves the ways AWS allows.

Each wrapper is named as a function's handler (``tests.integration.exactly_once_handlers.<name>``)
and invoked by the local runtime in-process, with the function's environment; it calls the real
``functions.projector.handler.lambda_handler``. What they did is counted in :data:`COUNTS`;
:func:`reset` forgets it (and every fault and projector) between runs.

* :func:`deliver_twice` - every batch reaches the projector twice, back to back.
* :func:`crash_midway` - the first delivery of a batch applies its first half, then the
  function crashes (a function error: the runtime delivers the records again).
* :func:`throttled` - the projector's own DynamoDB client sees throttling on ``BatchWriteItem``
  and ``UpdateItem`` at random, and ``UnprocessedItems`` for a fixed share of the facts.
"""

from __future__ import annotations

import random
import zlib
from collections import Counter
from typing import Any

from functions.projector import handler as projector_handler
from pipelines.consumers.config import ProjectorSettings
from tests.faults import HoldBack, Throttle

COUNTS: Counter[str] = Counter()
HOLD_BACKS: list[HoldBack] = []
_SEEN: set[str] = set()
_FAULTY_CLIENTS: dict[int, Any] = {}  # id(client) -> the client, kept alive

# Each throttled call fails with this probability (the writer retries it, WRITE_MAX_ATTEMPTS
# times in all; a write fails its record only when every attempt is throttled).
THROTTLE_RATE = 0.15
# One fact in this many is handed back as unprocessed on as many attempts as the writer makes,
# so its record fails on its first delivery and lands on the next.
HOLD_BACK_ONE_IN = 60
HOLD_BACK_TIMES = 3  # = WRITE_MAX_ATTEMPTS of the function's environment
FAULT_SEED = 11


class RandomThrottle(Throttle):
    """Fails a call of ``operation`` with probability ``rate`` (seeded, so runs repeat)."""

    def __init__(self, client: Any, operation: str, rate: float, rng: random.Random) -> None:
        self.rate = rate
        self.rng = rng
        self.injected = 0
        super().__init__(client, operation)

    def _before_call(self, **kwargs: Any) -> Any:
        if self.rng.random() >= self.rate:
            self.calls += 1
            return None
        self.injected += 1
        COUNTS["throttled_calls"] += 1
        return super()._before_call(**kwargs)


def reset() -> None:
    COUNTS.clear()
    HOLD_BACKS.clear()
    _SEEN.clear()
    _FAULTY_CLIENTS.clear()
    projector_handler.projector_for.cache_clear()


def _project(event: dict[str, Any], context: Any) -> Any:
    COUNTS["projector_invocations"] += 1
    return projector_handler.lambda_handler(event, context)


def deliver_twice(event: dict[str, Any], context: Any) -> Any:
    """The batch twice, as a duplicate invocation would bring it; the second answer counts."""
    _project(event, context)
    return _project(event, context)


class MidBatchCrash(RuntimeError):
    """The function died after part of its batch was written."""


def crash_midway(event: dict[str, Any], context: Any) -> Any:
    """A batch holding a record never delivered before: apply its first half, then crash."""
    records = event["Records"]
    ids = [record["eventID"] for record in records]
    if all(i in _SEEN for i in ids):
        return _project(event, context)
    _SEEN.update(ids)
    half = {**event, "Records": records[: max(1, len(records) // 2)]}
    response = _project(half, context)
    if response.get("batchItemFailures"):  # no fault here: not a crash the test counts
        raise AssertionError(f"the first half failed without any fault: {response}")
    COUNTS["crashes"] += 1
    raise MidBatchCrash(f"crashed after applying {len(half['Records'])} of {len(records)} records")


def _held_back(item: dict[str, Any]) -> bool:
    event_id = item.get("event_id", {}).get("S", "")
    return zlib.crc32(event_id.encode()) % HOLD_BACK_ONE_IN == 0


def held_back_puts() -> int:
    """How many times a put was handed back as unprocessed."""
    return sum(sum(hold_back.held.values()) for hold_back in HOLD_BACKS)


def throttled(event: dict[str, Any], context: Any) -> Any:
    """The projector, its DynamoDB client throttling and handing back unprocessed items."""
    client = projector_handler.projector_for(ProjectorSettings.from_env()).consumer.writer.client
    if id(client) not in _FAULTY_CLIENTS:
        _FAULTY_CLIENTS[id(client)] = client
        rng = random.Random(FAULT_SEED)
        HOLD_BACKS.append(HoldBack(client, _held_back, times=HOLD_BACK_TIMES))
        for operation in ("BatchWriteItem", "UpdateItem"):
            RandomThrottle(client, operation, THROTTLE_RATE, rng)
    return _project(event, context)
