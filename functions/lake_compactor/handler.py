"""Lambda entry point of the lake compactor
(handler ``functions.lake_compactor.handler.lambda_handler``).

An EventBridge Scheduler schedule invokes it daily with an empty event; a manual invocation
may narrow it with ``{"tables": ["transaction_recorded"], "before": "2026-11-03"}``. Wiring
only: Powertools Logger, Metrics (EMF) and Tracer; the logic is in
:mod:`pipelines.consumers.lake.maintenance`. pyarrow and pyiceberg come from the lake layer
on AWS, as for the lake writer. Clients are built on first use, never at import.
"""

from __future__ import annotations

from datetime import date
from functools import lru_cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config

from pipelines.consumers.config import LakeCompactorSettings
from pipelines.consumers.lake import LakeCatalog, build_lake_compactor, compact_lake
from pipelines.consumers.lake.compaction import Compactor
from pipelines.consumers.lake.maintenance import compaction_counts

logger = Logger()
metrics = Metrics()
tracer = Tracer()

_S3_CONFIG = Config(retries={"mode": "standard", "max_attempts": 3})


@lru_cache(maxsize=4)
def compactor_for(settings: LakeCompactorSettings) -> tuple[LakeCatalog, Compactor]:
    """The lake of ``settings`` and its compactor, with their clients; built once."""
    s3 = boto3.session.Session().client("s3", endpoint_url=settings.endpoint_url, config=_S3_CONFIG)
    return build_lake_compactor(settings, s3)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = LakeCompactorSettings.from_env()
    metrics.namespace = settings.metrics_namespace
    lake, compactor = compactor_for(settings)
    before = event.get("before")
    reports = compact_lake(
        lake,
        compactor,
        tables=event.get("tables"),
        before=date.fromisoformat(before) if before else None,
    )
    for name, value in compaction_counts(reports).items():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    documents = [r.to_dict() for r in reports]
    logger.info("lake compacted", extra={"tables": documents})
    return {"tables": documents}
