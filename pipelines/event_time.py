"""The earliest event time the pipeline accepts, declared once.

The lake partitions each table by event date, and Athena finds partitions through the Glue
partition projection, whose date range starts at :data:`EVENT_TIME_FLOOR`
(``terraform/modules/catalog`` reads it from ``tables.json``, which
``python -m pipelines_local.catalog`` writes from here). An event dated earlier would be
written to a partition no query ever reads, so the decode path refuses it as poison and the
lake writer never writes one. This module imports nothing, so that every function's code can
read it (the decode path runs where pyarrow is not installed).
"""

from __future__ import annotations

from datetime import UTC, datetime

# The first instant an event may be dated: midnight UTC on the lake's first partition.
EVENT_TIME_FLOOR = datetime(2024, 1, 1, tzinfo=UTC)
# ``yyyy-MM-dd`` of that first partition, as the partition projection spells it.
EVENT_TIME_FLOOR_DATE = EVENT_TIME_FLOOR.date().isoformat()
