"""Lambda entry point of the projector (handler ``functions.projector.handler.lambda_handler``).

Wiring only: Powertools Logger, Metrics (EMF) and Tracer, and the batch kernel reporting
partial failures. The projection logic is in :mod:`pipelines.consumers.projector`. Clients
are built on first use, never at import.
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

from pipelines.consumers.batch import KinesisBatchKernel, freeze_heap
from pipelines.consumers.config import ProjectorSettings
from pipelines.consumers.projector.projector import build_projector

logger = Logger()
metrics = Metrics()
tracer = Tracer()

# The projector retries DynamoDB writes itself (pipelines.adapters.dynamo); botocore does not.
_DYNAMODB_CONFIG = Config(retries={"mode": "standard", "max_attempts": 1})
_S3_CONFIG = Config(retries={"mode": "standard", "max_attempts": 3})


@lru_cache(maxsize=4)
def projector_for(settings: ProjectorSettings) -> KinesisBatchKernel:
    """The projector of ``settings``, with its clients; built once per configuration."""
    session = boto3.session.Session()
    endpoint = settings.endpoint_url
    dynamodb = session.client("dynamodb", endpoint_url=endpoint, config=_DYNAMODB_CONFIG)
    s3 = session.client("s3", endpoint_url=endpoint, config=_S3_CONFIG)
    kernel = build_projector(settings, dynamodb, s3, logger=logger, metrics=metrics)
    freeze_heap()
    return kernel


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    settings = ProjectorSettings.from_env()
    metrics.namespace = settings.metrics_namespace
    kernel = projector_for(settings)
    return process_partial_response(
        event=event, record_handler=kernel.consumer.consume, processor=kernel, context=context
    )
