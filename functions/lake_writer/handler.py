"""Lambda entry point of the lake writer (handler ``functions.lake_writer.handler.lambda_handler``).

Wiring only: Powertools Logger, Metrics (EMF) and Tracer, and the batch kernel reporting
failures. The logic is in :mod:`pipelines.consumers.lake`. pyarrow and pyiceberg are not in
the function's package: on AWS they come from the lake layer (``make package``). Clients are
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

from pipelines.adapters.quarantine import Quarantine
from pipelines.consumers.batch import KinesisBatchKernel, freeze_heap
from pipelines.consumers.config import LakeWriterSettings
from pipelines.consumers.lake import build_lake_writer

logger = Logger()
metrics = Metrics()
tracer = Tracer()

_S3_CONFIG = Config(retries={"mode": "standard", "max_attempts": 3})


@lru_cache(maxsize=4)
def lake_writer_for(settings: LakeWriterSettings) -> KinesisBatchKernel:
    """The lake writer of ``settings``, with its clients; built once per configuration."""
    s3 = boto3.session.Session().client("s3", endpoint_url=settings.endpoint_url, config=_S3_CONFIG)
    quarantine = Quarantine(s3, settings.quarantine_bucket, settings.service_name)
    kernel = build_lake_writer(settings, quarantine, logger=logger, metrics=metrics)
    freeze_heap()
    return kernel


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    settings = LakeWriterSettings.from_env()
    metrics.namespace = settings.metrics_namespace
    kernel = lake_writer_for(settings)
    return process_partial_response(
        event=event, record_handler=kernel.consumer.consume, processor=kernel, context=context
    )
