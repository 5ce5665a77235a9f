"""Lambda entry point of the archiver (handler ``functions.archiver.handler.lambda_handler``).

Wiring only: Powertools Logger, Metrics (EMF) and Tracer, and the batch kernel reporting
failures. The logic is in :mod:`pipelines.consumers.archive`. The archiver needs no pyarrow
(it writes with boto3's S3 client), so it runs without the lake writer's layer. Clients are
built on first use, never at import.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.batch import process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config

from pipelines.consumers.archive.archiver import build_archiver
from pipelines.consumers.batch import KinesisBatchKernel, freeze_heap
from pipelines.consumers.config import ArchiverSettings

logger = Logger()
metrics = Metrics()
tracer = Tracer()

_S3_CONFIG = Config(retries={"mode": "standard", "max_attempts": 3})


@lru_cache(maxsize=4)
def archiver_for(settings: ArchiverSettings) -> KinesisBatchKernel:
    """The archiver of ``settings``, with its client; built once per configuration."""
    s3 = boto3.session.Session().client("s3", endpoint_url=settings.endpoint_url, config=_S3_CONFIG)
    kernel = build_archiver(settings, s3, logger=logger, metrics=metrics)
    freeze_heap()
    return kernel


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    settings = ArchiverSettings.from_env()
    metrics.namespace = settings.metrics_namespace
    kernel = archiver_for(settings)
    return process_partial_response(
        event=event, record_handler=kernel.consumer.consume, processor=kernel, context=context
    )
