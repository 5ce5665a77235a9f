"""``pipeline alerts``: watch the alerts as SNS delivers them, through a queue of its own.

The command creates a temporary SQS queue (``<prefix>-alerts-<id>``, kept an hour at most
by SQS's retention, tagged ``pipelines:purpose=alerts-tail``) whose policy lets only the
watched topics send to it, subscribes it to them (the Terraform output ``topic_arns``:
``anomaly_alerts`` and ``fraud_alerts``, where the alerter publishes, and ``operations``,
where CloudWatch alarms go), prints every notification that arrives, and on the way out
(the end of ``--wait`` without ``--follow``, Ctrl-C, or an error) unsubscribes and deletes
the queue, with Ctrl-C ignored while it does.

An alert message is the alerter's (:mod:`pipelines.adapters.alert_publisher`): a JSON body
with ``alert_id``, ``alert_type``, ``rule``, ``severity``, ``subject``, ``occurred_at`` and
the rule's details, and the message attributes ``severity``, ``alert_type`` and ``rule``.
``--severity S`` keeps the alerts of severity S or above (low < medium < high < critical);
a message without a severity (a CloudWatch alarm) is then left out. Only what is published
while the command runs arrives: ``pipeline status`` shows the latest alerts recorded.
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TextIO

from botocore.exceptions import BotoCoreError, ClientError

from pipelines.consumers.alerts.rules import SEVERITIES
from pipelines.errors import PipelineError
from pipelines_local.workspace import DEFAULT_WORKSPACE, Workspace

ALERT_TOPICS = ("anomaly_alerts", "fraud_alerts", "operations")
DEFAULT_WAIT_SECONDS = 5.0
RETENTION_SECONDS = 3600
PURPOSE_TAG = "pipelines:purpose"
_LONG_POLL = 20
_RANK = {severity: rank for rank, severity in enumerate(reversed(SEVERITIES))}


class AlertsError(PipelineError):
    """The temporary queue or its subscriptions could not be set up."""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "alerts",
        help="print the alerts the topics deliver, through a temporary queue",
        description="Subscribes a temporary SQS queue to the workspace's alert topics "
        "(anomaly_alerts, fraud_alerts, operations), prints each alert as it arrives, and "
        "removes the subscriptions and the queue on the way out. Without --follow it stops "
        "after --wait seconds; with it, at Ctrl-C. Only alerts published meanwhile arrive "
        "(`pipeline status` shows the latest recorded).",
    )
    parser.add_argument("--workspace", default=DEFAULT_WORKSPACE, help="(default: %(default)s)")
    parser.add_argument(
        "--endpoint",
        metavar="URL",
        help="AWS-compatible endpoint (default: where `pipeline up` deployed the workspace)",
    )
    parser.add_argument(
        "--severity",
        choices=tuple(reversed(SEVERITIES)),
        help="only alerts of this severity or above",
    )
    parser.add_argument(
        "--topic",
        action="append",
        metavar="KEY",
        help="watch this topic (a key of the topic_arns output); repeatable "
        f"(default: {', '.join(ALERT_TOPICS)})",
    )
    parser.add_argument(
        "--follow", "-f", action="store_true", help="keep printing alerts until Ctrl-C"
    )
    parser.add_argument(
        "--wait",
        type=float,
        default=DEFAULT_WAIT_SECONDS,
        metavar="SECONDS",
        help="without --follow: how long to listen (default: %(default)s)",
    )
    parser.add_argument("--json", action="store_true", help="print each alert as a JSON line")
    parser.set_defaults(func=watch_alerts)


# --- messages -------------------------------------------------------------------------------


def at_least(severity: str | None, minimum: str | None) -> bool:
    """Whether ``severity`` is ``minimum`` or above (everything passes no minimum)."""
    if minimum is None:
        return True
    return severity in _RANK and _RANK[severity] >= _RANK[minimum]


def parse_notification(body: str, topics: Mapping[str, str]) -> dict[str, Any]:
    """An alert from an SQS message body: an SNS notification envelope (or, if it is not
    one, the message itself). ``topics`` maps topic ARN -> key."""
    try:
        envelope = json.loads(body)
    except ValueError:
        envelope = None
    if not isinstance(envelope, dict) or "TopicArn" not in envelope:
        envelope = {"Message": body}
    attributes = {
        str(k): str((v or {}).get("Value", ""))
        for k, v in (envelope.get("MessageAttributes") or {}).items()
    }
    raw = envelope.get("Message", "")
    try:
        message: Any = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        message = raw
    details = message if isinstance(message, dict) else {}
    arn = str(envelope.get("TopicArn", ""))
    alarm = details.get("AlarmName")
    return {
        "topic": topics.get(arn, arn.rsplit(":", 1)[-1] or None),
        "published_at": envelope.get("Timestamp"),
        "severity": attributes.get("severity") or details.get("severity"),
        "alert_type": attributes.get("alert_type") or details.get("alert_type"),
        "rule": attributes.get("rule") or details.get("rule") or alarm,
        "subject": details.get("subject") or details.get("NewStateValue"),
        "alert_id": details.get("alert_id"),
        "title": envelope.get("Subject"),
        "message": message,
    }


def format_alert(alert: Mapping[str, Any], width: int = 80) -> str:
    """One alert as text: time, severity, topic, rule, subject (wrapped within ``width``)."""
    import textwrap

    moment = str(alert.get("published_at") or "").replace("T", " ").split(".")[0].rstrip("Z")
    parts = [
        moment or "-",
        (alert.get("severity") or "-").upper(),
        alert.get("topic") or "-",
        alert.get("rule") or "-",
        str(alert.get("subject") or ""),
    ]
    text = "  ".join(p for p in parts if p)
    return "\n".join(textwrap.wrap(text, width, subsequent_indent="    ")) or text


# --- the temporary queue ----------------------------------------------------------------


@dataclass
class AlertTap:
    """A queue subscribed to topics, removed by :meth:`close`."""

    sqs: Any
    sns: Any
    topics: Mapping[str, str]  # key -> topic ARN
    name_prefix: str = "pipelines"
    queue_url: str | None = None
    queue_arn: str | None = None
    subscriptions: list[str] = field(default_factory=list)

    @property
    def queue_name(self) -> str:
        return (self.queue_url or "").rsplit("/", 1)[-1]

    def open(self) -> AlertTap:
        name = f"{self.name_prefix[:60]}-alerts-{uuid.uuid4().hex[:8]}"
        try:
            self.queue_url = self.sqs.create_queue(
                QueueName=name,
                Attributes={"MessageRetentionPeriod": str(RETENTION_SECONDS)},
                tags={PURPOSE_TAG: "alerts-tail"},
            )["QueueUrl"]
            attributes = self.sqs.get_queue_attributes(
                QueueUrl=self.queue_url, AttributeNames=["QueueArn"]
            )
            self.queue_arn = str(attributes["Attributes"]["QueueArn"])
            self.sqs.set_queue_attributes(
                QueueUrl=self.queue_url, Attributes={"Policy": json.dumps(self._policy())}
            )
            for arn in self.topics.values():
                subscription = self.sns.subscribe(
                    TopicArn=arn,
                    Protocol="sqs",
                    Endpoint=self.queue_arn,
                    ReturnSubscriptionArn=True,
                )
                self.subscriptions.append(str(subscription["SubscriptionArn"]))
        except (ClientError, BotoCoreError) as exc:
            self.close()
            raise AlertsError(f"cannot listen to the alert topics: {exc}") from exc
        except BaseException:  # Ctrl-C half-way: leave nothing behind
            self.close()
            raise
        return self

    def _policy(self) -> dict[str, Any]:
        return {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "AlertTopicsDeliver",
                    "Effect": "Allow",
                    "Principal": {"Service": "sns.amazonaws.com"},
                    "Action": "sqs:SendMessage",
                    "Resource": self.queue_arn,
                    "Condition": {"ArnEquals": {"aws:SourceArn": sorted(self.topics.values())}},
                }
            ],
        }

    def receive(self, wait_seconds: int) -> list[str]:
        """The bodies that arrive within ``wait_seconds``, deleted from the queue."""
        response = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=max(0, min(_LONG_POLL, wait_seconds)),
        )
        messages = response.get("Messages", [])
        if messages:
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]}
                    for n, m in enumerate(messages)
                ],
            )
        return [str(m["Body"]) for m in messages]

    def close(self) -> list[str]:
        """Unsubscribe and delete the queue; what could not be removed (ARNs, URL)."""
        left: list[str] = []
        with _ignoring_interrupts():
            for arn in self.subscriptions:
                try:
                    self.sns.unsubscribe(SubscriptionArn=arn)
                except (ClientError, BotoCoreError):
                    left.append(arn)
            self.subscriptions = []
            if self.queue_url is not None:
                try:
                    self.sqs.delete_queue(QueueUrl=self.queue_url)
                except (ClientError, BotoCoreError):
                    left.append(self.queue_url)
                self.queue_url = None
        return left


@contextmanager
def _ignoring_interrupts() -> Iterator[None]:
    """Ctrl-C does nothing meanwhile (only the main thread can set signal handlers)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def listen(
    tap: AlertTap,
    on_alert: Callable[[dict[str, Any]], None],
    *,
    follow: bool,
    wait_seconds: float,
    minimum: str | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """Hand every alert that arrives (of ``minimum`` severity or above) to ``on_alert``,
    for ``wait_seconds`` or, with ``follow``, until interrupted. Returns alerts handed on."""
    by_arn = {arn: key for key, arn in tap.topics.items()}
    deadline = clock() + wait_seconds
    shown = 0
    while True:
        remaining = deadline - clock()
        if not follow and remaining <= 0:
            return shown
        wait = _LONG_POLL if follow else math.ceil(remaining)
        for body in tap.receive(wait):
            alert = parse_notification(body, by_arn)
            if at_least(alert["severity"], minimum):
                on_alert(alert)
                shown += 1


# --- the command ----------------------------------------------------------------------------


def chosen_topics(outputs: Mapping[str, Any], wanted: Sequence[str] | None) -> dict[str, str]:
    arns = {str(k): str(v) for k, v in dict(outputs.get("topic_arns") or {}).items()}
    keys = list(wanted) if wanted else [k for k in ALERT_TOPICS if k in arns]
    unknown = [k for k in keys if k not in arns]
    if unknown or not keys:
        from pipelines_local.cli import UsageError

        raise UsageError(
            f"no topic {', '.join(map(repr, unknown)) or 'to watch'} in the workspace; "
            f"it has {', '.join(sorted(arns)) or 'none'}"
        )
    return {k: arns[k] for k in keys}


def watch_alerts(args: argparse.Namespace, stdout: TextIO | None = None) -> int:
    out = stdout or sys.stdout
    workspace = Workspace.load(args.workspace, endpoint_url=args.endpoint)
    topics = chosen_topics(workspace.outputs, args.topic)
    tap = AlertTap(
        workspace.client("sqs"),
        workspace.client("sns"),
        topics,
        name_prefix=str(workspace.outputs.get("name_prefix") or "pipelines"),
    )

    shown = 0

    def show(alert: dict[str, Any]) -> None:
        nonlocal shown
        print(json.dumps(alert) if args.json else format_alert(alert), file=out, flush=True)
        shown += 1

    interrupted = False
    tap.open()
    try:
        how_long = "until Ctrl-C" if args.follow else f"for {args.wait:g}s"
        print(
            f"pipeline alerts: listening to {', '.join(topics)} through {tap.queue_name} "
            f"{how_long}",
            file=sys.stderr,
            flush=True,
        )
        listen(tap, show, follow=args.follow, wait_seconds=args.wait, minimum=args.severity)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        left = tap.close()
    plural = "s" if shown != 1 else ""
    if left:
        raise AlertsError(
            f"{shown} alert{plural} shown, but these could not be removed (delete them by "
            f"hand): {', '.join(left)}"
        )
    print(
        f"pipeline alerts: {shown} alert{plural} shown; subscriptions and queue removed",
        file=sys.stderr,
    )
    return 130 if interrupted else 0
