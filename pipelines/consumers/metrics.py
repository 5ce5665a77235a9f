"""The consumers' metrics: every name defined once, counted per batch, emitted as EMF.

Each batch is counted in one :class:`BatchCounts` and emitted once at its end: the total
of every metric the consumer declares (zeros included, so that a dashboard sees a flat
line rather than a gap), and a breakdown by one dimension (``EventType`` or ``Rule``)
of the metrics counted with one, as single EMF metrics. Powertools adds the ``service``
dimension (the function's ``POWERTOOLS_SERVICE_NAME``) to both.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any, Protocol

from aws_lambda_powertools.metrics import MetricUnit, single_metric

# The batch kernel's, for every consumer.
EVENTS_QUARANTINED = "EventsQuarantined"
EVENTS_SKIPPED_DUPLICATE = "EventsSkippedDuplicate"
RECORDS_FAILED = "RecordsFailed"
RECORDS_BLOCKED = "RecordsBlockedByKeyOrder"
KERNEL_METRICS = (EVENTS_QUARANTINED, EVENTS_SKIPPED_DUPLICATE, RECORDS_FAILED, RECORDS_BLOCKED)

# The projector's.
EVENTS_PROJECTED = "EventsProjected"
EVENTS_SKIPPED_STALE = "EventsSkippedStale"

# The lake writer's.
EVENTS_WRITTEN = "EventsWrittenToLake"
LAKE_DUPLICATES_DROPPED = "LakeDuplicatesDropped"  # an event_id the table already held
LAKE_COMMIT_RETRIES = "LakeCommitRetries"  # commits redone after losing a race

# The lake compactor's, per run.
LAKE_PARTITIONS_COMPACTED = "LakePartitionsCompacted"
LAKE_FILES_COMPACTED_AWAY = "LakeFilesCompactedAway"  # data files less after the rewrites
LAKE_DUPLICATES_REMOVED = "LakeDuplicatesRemoved"  # copies of an event_id a rewrite dropped
LAKE_COMPACTION_RETRIES = "LakeCompactionRetries"  # rewrites redone after losing a race
LAKE_SNAPSHOTS_EXPIRED = "LakeSnapshotsExpired"
LAKE_ORPHAN_FILES_DELETED = "LakeOrphanFilesDeleted"

# The archiver's.
EVENTS_ARCHIVED = "EventsArchived"
POISON_ARCHIVED = "PoisonArchived"
EVENTS_NOT_ARCHIVED_REPLAYED = "EventsNotArchivedReplayed"

# The alerter's.
ALERTS_RAISED = "AlertsRaised"
ALERTS_SKIPPED_DUPLICATE = "AlertsSkippedDuplicate"
EVENTS_EVALUATED = "EventsEvaluated"
EVENTS_SKIPPED_REPLAY = "EventsSkippedReplay"

# Dimensions of the breakdowns, and the event type of a record that did not decode.
EVENT_TYPE = "EventType"
RULE = "Rule"
UNKNOWN_TYPE = "unknown"


class MetricsSink(Protocol):
    """What a consumer needs of Powertools' ``Metrics``."""

    def add_metric(self, name: str, unit: Any, value: float) -> None: ...


class BatchCounts:
    """What happened in one batch, by metric name, with optional breakdowns."""

    def __init__(self, names: Iterable[str] = ()) -> None:
        self.totals: Counter[str] = Counter({name: 0 for name in names})
        self.breakdowns: dict[str, tuple[str, Counter[str]]] = {}

    def add(self, name: str, value: int = 1, *, dimension: str | None = None, of: str = "") -> None:
        """Count ``value`` under ``name``; with a ``dimension``, also under its value ``of``."""
        self.totals[name] += value
        if dimension is not None and value:
            _, by_value = self.breakdowns.setdefault(name, (dimension, Counter()))
            by_value[of] += value

    def __getitem__(self, name: str) -> int:
        return self.totals[name]

    def by(self, name: str) -> dict[str, int]:
        """The breakdown of ``name`` (by event type or rule); empty when it has none."""
        return dict(self.breakdowns.get(name, ("", Counter()))[1])

    def emit(self, sink: MetricsSink) -> None:
        """Every total through ``sink``; the breakdowns as single EMF metrics.

        Breakdowns need the sink's namespace (a Powertools ``Metrics``); a plain sink gets
        the totals only.
        """
        for name, value in self.totals.items():
            sink.add_metric(name=name, unit="Count", value=value)
        namespace = getattr(sink, "namespace", None)
        if not namespace:
            return
        for name, (dimension, by_value) in self.breakdowns.items():
            for value_of, value in by_value.items():
                with single_metric(
                    name=name,
                    unit=MetricUnit.Count,
                    value=value,
                    namespace=namespace,
                    default_dimensions={dimension: value_of},
                ):
                    pass
