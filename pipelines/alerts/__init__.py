"""Alerts: metric anomalies and fraud, raised once per event and rule, published to SNS.

* :mod:`~pipelines.alerts.rules` - the rules (pure);
* :mod:`~pipelines.alerts.state` - baselines and recent transactions in DynamoDB;
* :mod:`~pipelines.alerts.publisher` - the alerts table and SNS, once per event and rule;
* :mod:`~pipelines.alerts.planning` - a batch decoded for the rules, and evaluated (pure);
* :mod:`~pipelines.alerts.alerter` - one Lambda batch, end to end;
* :mod:`~pipelines.alerts.settings` - the configuration.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from pipelines.alerts.alerter import Alerter
from pipelines.alerts.publisher import AlertPublisher
from pipelines.alerts.rules import FRAUD_ALERT, METRIC_ANOMALY
from pipelines.alerts.settings import AlerterSettings
from pipelines.alerts.state import BaselineStore, RecentTransactions
from pipelines.dynamo import DynamoWriter
from pipelines.projector import MetricsSink
from pipelines.quarantine import Quarantine

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sns import SNSClient

__all__ = ["Alerter", "AlerterSettings", "build_alerter"]


def build_alerter(
    settings: AlerterSettings,
    dynamodb: DynamoDBClient,
    sns: SNSClient,
    s3: S3Client,
    *,
    logger: logging.Logger | Any = None,
    metrics: MetricsSink | None = None,
) -> Alerter:
    """An alerter for ``settings``'s tables, topics and bucket, on the given clients."""
    writer = DynamoWriter(dynamodb, settings.retry)
    return Alerter(
        BaselineStore(dynamodb, settings.metric_baselines_table),
        RecentTransactions(
            writer,
            settings.recent_transactions_table,
            ttl_seconds=settings.recent_transactions_ttl_hours * 3600,
            ttl_attribute=settings.ttl_attribute,
        ),
        AlertPublisher(
            dynamodb,
            sns,
            settings.alerts_table,
            {METRIC_ANOMALY: settings.anomaly_topic_arn, FRAUD_ALERT: settings.fraud_topic_arn},
            ttl_seconds=settings.alert_ttl_days * 86_400,
            ttl_attribute=settings.ttl_attribute,
        ),
        Quarantine(s3, settings.quarantine_bucket, settings.service_name),
        logger=logger,
        metrics=metrics,
        concurrency=settings.state_concurrency,
    )
