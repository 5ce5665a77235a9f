"""Counters a run reports, per mapping and in total."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields


@dataclass
class MappingStats:
    """What happened on one mapping (or, summed, on all of them).

    * ``batches`` - invocations of the function.
    * ``records_delivered`` - records passed to the function, re-deliveries included.
    * ``records_succeeded`` - records settled as processed (checkpointed past, or deleted).
    * ``events_succeeded`` - the events in those records: a Kinesis record the producer
      aggregated holds many; an SQS message is one.
    * ``events_quarantined`` - of the events the function was given, those it quarantined
      as poison (its ``EventsQuarantined`` metric): settled, but not processed.
    * ``function_errors`` - invocations that raised (or could not import the handler).
    * ``partial_failures`` - invocations that reported batch item failures.
    * ``retries`` - re-invocations of records that failed before.
    * ``bisections`` - failed batches split in two.
    * ``records_dead_lettered`` - records given up on (retries exhausted or too old) whose
      coordinates went to the on-failure destination.
    * ``records_discarded`` - records given up on with no destination configured.
    * ``records_expired`` - of those given up on, the ones older than the maximum record age.
    * ``timeouts`` - invocations that ran past the function's timeout (logged, not enforced).
    """

    batches: int = 0
    records_delivered: int = 0
    records_succeeded: int = 0
    events_succeeded: int = 0
    events_quarantined: int = 0
    function_errors: int = 0
    partial_failures: int = 0
    retries: int = 0
    bisections: int = 0
    records_dead_lettered: int = 0
    records_discarded: int = 0
    records_expired: int = 0
    timeouts: int = 0

    def add(self, other: MappingStats) -> None:
        for item in fields(self):
            setattr(self, item.name, getattr(self, item.name) + getattr(other, item.name))

    def to_dict(self) -> dict[str, int]:
        return asdict(self)
