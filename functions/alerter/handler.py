"""Lambda entry point of the alerter (handler ``functions.alerter.handler.lambda_handler``).

Wiring only: Powertools Logger, Metrics (EMF) and Tracer, and the batch kernel reporting
partial failures. The rules and the once-per-event publishing are in
:mod:`pipelines.consumers.alerts`. Clients are built on first use, never at import.
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

from pipelines.consumers.alerts.alerter import build_alerter
from pipelines.consumers.batch import KinesisBatchKernel, freeze_heap
from pipelines.consumers.config import AlerterSettings

logger = Logger()
metrics = Metrics()
tracer = Tracer()

# Batch writes are retried by pipelines.adapters.dynamo; single calls by botocore's standard mode.
_CONFIG = Config(retries={"mode": "standard", "max_attempts": 4})


@lru_cache(maxsize=4)
def alerter_for(settings: AlerterSettings) -> KinesisBatchKernel:
    """The alerter of ``settings``, with its clients; built once per configuration."""
    session = boto3.session.Session()
    endpoint = settings.endpoint_url
    kernel = build_alerter(
        settings,
        session.client("dynamodb", endpoint_url=endpoint, config=_CONFIG),
        session.client("sns", endpoint_url=endpoint, config=_CONFIG),
        session.client("s3", endpoint_url=endpoint, config=_CONFIG),
        logger=logger,
        metrics=metrics,
    )
    freeze_heap()
    return kernel


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    settings = AlerterSettings.from_env()
    metrics.namespace = settings.metrics_namespace
    kernel = alerter_for(settings)
    return process_partial_response(
        event=event, record_handler=kernel.consumer.consume, processor=kernel, context=context
    )
