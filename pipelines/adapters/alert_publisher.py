"""Publishing alerts to SNS once per event and rule, recorded in the ``alerts`` table.

The sequence for one alert (``alert_id = "<rule>#<event_id>"``):

1. a conditional ``PutItem`` on ``alerts`` (``attribute_not_exists(alert_id)``) with
   ``published = false`` - *before* anything is sent;
2. ``Publish`` to the topic of the alert type, with the message attributes
   ``severity``, ``alert_type`` and ``rule`` (String), for subscription filter policies;
3. ``UpdateItem`` setting ``published = true`` and the SNS message id.

When step 1 finds the alert already recorded, it is published again only if it is
not marked ``published``: a crash (or an SNS failure) between 1 and 3 is repaired by
the re-delivery. The trade-off chosen is **at-least-once publishing with exactly-once
recording**: the one window where a subscriber can see an alert twice is a crash
after SNS accepted the message and before step 3 landed. Publishing at most once
(marking before sending) would instead lose the alert in the same crash, and an
alert that never arrives is worse than a duplicate (the message carries ``alert_id``
so a subscriber can drop the rare repeat).

Every message is strict JSON (:func:`json_safe`: no ``NaN`` or ``Infinity`` token, decimals
and times as text), whatever the alert's details hold. A request SNS or DynamoDB rejects
for what the alert holds raises :class:`AlertRejectedError`, so that the alerter can set
the event that raised it aside instead of retrying it forever.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from pipelines.adapters.errors import Failure, classify, error_code, translate
from pipelines.consumers.alerts.rules import Alert
from pipelines.contract.timestamps import iso_from_epoch_millis, iso_millis
from pipelines.errors import PipelineError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_sns import SNSClient


DETAIL_CHARS_MAX = 1024  # a longer text detail (a currency, a source) is cut


class PublishOutcome(Enum):
    PUBLISHED = "published"  # first time
    REPUBLISHED = "republished"  # recorded earlier, never marked published
    DUPLICATE = "duplicate"  # recorded and published earlier: nothing sent


class AlertRejectedError(PipelineError):
    """SNS or DynamoDB refused an alert for what it holds; retrying will not help."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


def json_safe(value: Any) -> Any:
    """``value`` with everything strict JSON cannot spell turned into what it can.

    Non-finite floats become their text (``"nan"``, ``"inf"``), decimals their exact
    text, times ISO text, sets sorted lists, unknown objects ``str``; mapping keys text.
    """
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return iso_millis(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted((json_safe(v) for v in value), key=repr)
    return str(value)


def message_json(message: Mapping[str, Any]) -> str:
    """Strict JSON text of a message (never a ``NaN`` or ``Infinity`` token)."""
    return json.dumps(json_safe(message), allow_nan=False)


def alert_message(alert: Alert) -> dict[str, Any]:
    """The body of an alert's SNS message, JSON-safe."""
    message: dict[str, Any] = {
        "alert_id": alert.alert_id,
        "alert_type": alert.alert_type,
        "rule": alert.rule,
        "severity": alert.severity,
        "event_id": alert.event_id,
        "subject": alert.subject,
        "occurred_at": iso_from_epoch_millis(alert.occurred_at_ms),
    }
    for name, value in alert.details.items():
        if isinstance(value, str) and len(value) > DETAIL_CHARS_MAX:  # a message stays small
            value = value[:DETAIL_CHARS_MAX] + "..."
        message.setdefault(str(name), value)  # details never overwrite the alert's own
    if alert.raised_by:
        message.setdefault("raised_by_event_id", alert.raised_by)
    safe: dict[str, Any] = json_safe(message)
    return safe


def message_attributes(alert: Alert) -> dict[str, Any]:
    return {
        "severity": {"DataType": "String", "StringValue": alert.severity},
        "alert_type": {"DataType": "String", "StringValue": alert.alert_type},
        "rule": {"DataType": "String", "StringValue": alert.rule},
    }


class AlertPublisher:
    """Records alerts in DynamoDB and publishes them to SNS, once per alert id."""

    def __init__(
        self,
        dynamodb: DynamoDBClient,
        sns: SNSClient,
        table: str,
        topics: Mapping[str, str],
        *,
        ttl_seconds: int = 90 * 86_400,
        ttl_attribute: str = "ttl",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.dynamodb = dynamodb
        self.sns = sns
        self.table = table
        self.topics = dict(topics)  # alert type -> topic ARN
        self.ttl_seconds = ttl_seconds
        self.ttl_attribute = ttl_attribute
        self._clock = clock

    def publish(self, alert: Alert) -> PublishOutcome:
        """Record and publish ``alert`` unless it was already published."""
        topic = self.topics[alert.alert_type]
        message = alert_message(alert)
        outcome = PublishOutcome.PUBLISHED
        if not self._record(alert, message):
            if self._already_published(alert):
                return PublishOutcome.DUPLICATE
            outcome = PublishOutcome.REPUBLISHED
        try:
            response = self.sns.publish(
                TopicArn=topic,
                Message=message_json(message),
                Subject=f"{alert.severity.upper()} {alert.rule} alert"[:100],
                MessageAttributes=message_attributes(alert),
            )
            self.dynamodb.update_item(
                TableName=self.table,
                Key={"alert_id": {"S": alert.alert_id}},
                UpdateExpression="SET published = :t, message_id = :m, published_at = :at",
                ExpressionAttributeValues={
                    ":t": {"BOOL": True},
                    ":m": {"S": response.get("MessageId", "")},
                    ":at": {"N": str(int(self._clock()))},
                },
            )
        except (ClientError, BotoCoreError) as exc:
            raise _translate(exc, f"alert {alert.alert_id} not published") from exc
        return outcome

    def _record(self, alert: Alert, message: Mapping[str, Any]) -> bool:
        """Put the alert's record; ``False`` when it was already there."""
        now = int(self._clock())
        item: dict[str, Any] = {
            "alert_id": {"S": alert.alert_id},
            "rule": {"S": alert.rule},
            "alert_type": {"S": alert.alert_type},
            "severity": {"S": alert.severity},
            "event_id": {"S": alert.event_id},
            "subject": {"S": alert.subject},
            "occurred_at": {"S": iso_from_epoch_millis(alert.occurred_at_ms)},
            "message": {"S": message_json(message)},
            "published": {"BOOL": False},
            "recorded_at": {"N": str(now)},
            self.ttl_attribute: {"N": str(now + self.ttl_seconds)},
        }
        try:
            self.dynamodb.put_item(
                TableName=self.table,
                Item=item,
                ConditionExpression="attribute_not_exists(alert_id)",
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise _translate(exc, f"alert {alert.alert_id} not recorded") from exc
        except BotoCoreError as exc:
            raise translate(exc, f"alert {alert.alert_id} not recorded") from exc
        return True

    def _already_published(self, alert: Alert) -> bool:
        try:
            response = self.dynamodb.get_item(
                TableName=self.table,
                Key={"alert_id": {"S": alert.alert_id}},
                ConsistentRead=True,
            )
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, f"alert {alert.alert_id} not readable") from exc
        item: dict[str, Any] = dict(response.get("Item") or {})
        return bool(item.get("published", {}).get("BOOL"))


def _translate(exc: ClientError | BotoCoreError, what: str) -> Exception:
    if classify(exc) is Failure.REJECTED:
        code = error_code(exc) if isinstance(exc, ClientError) else type(exc).__name__
        return AlertRejectedError(f"{what}: rejected ({code}): {exc}", code)
    return translate(exc, what)
