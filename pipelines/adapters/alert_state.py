"""The state the alert rules need, in DynamoDB: baselines and recent transactions.

* ``metric_baselines`` (``source`` + ``metric_name``): the last
  :data:`~pipelines.consumers.alerts.rules.BASELINE_WINDOW` samples of a series as JSON
  ``[[epoch ms, event id, value], ...]`` (``samples``), with their ``mean``,
  ``stddev``, ``sample_count``, the last applied sample (``last_event_id``,
  ``last_occurred_at``) and a ``revision``. Saving merges by event id under a
  condition on the revision read, so a re-delivered sample never moves the baseline
  twice and a concurrent writer is merged with, not overwritten.
* ``recent_transactions`` (``user_id`` + ``timestamp`` = ``<ISO time>#<event id>``):
  one item per transaction, written with a deterministic key (a re-delivery
  rewrites the same item), expiring after a day. A user's window is a ``Query``
  on event time, so late or re-delivered events count where they happened.

botocore errors are translated by :func:`pipelines.adapters.errors.translate`: transient
faults retry, a missing table or denied access fails loudly.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from pipelines.adapters.dynamo import DynamoWriter, FactPut
from pipelines.adapters.errors import error_code, translate
from pipelines.consumers.alerts.rules import Baseline, MetricSample, Transaction, TxEntry
from pipelines.contract.timestamps import iso_from_epoch_millis
from pipelines.errors import TransientError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

Series = tuple[str, str]  # (source, metric name)
_BATCH_GET_MAX = 100
_SAVE_ATTEMPTS = 5


class StoredBaseline:
    """A baseline as read, with the revision a save is conditional on (0: no item)."""

    __slots__ = ("baseline", "revision")

    def __init__(self, baseline: Baseline, revision: int) -> None:
        self.baseline = baseline
        self.revision = revision


class BaselineStore:
    """Rolling baselines per source and metric."""

    def __init__(self, client: DynamoDBClient, table: str, retry_sleep: float = 0.05) -> None:
        self.client = client
        self.table = table
        self._retry_sleep = retry_sleep

    def load(self, series: Iterable[Series]) -> dict[Series, StoredBaseline]:
        """The stored baselines of ``series`` (empty ones for series never seen)."""
        wanted = list(dict.fromkeys(series))
        found = {s: StoredBaseline(Baseline(), 0) for s in wanted}
        for start in range(0, len(wanted), _BATCH_GET_MAX):
            keys = [_key(s) for s in wanted[start : start + _BATCH_GET_MAX]]
            request: dict[str, Any] = {self.table: {"Keys": keys, "ConsistentRead": True}}
            for attempt in range(8):
                try:
                    response = self.client.batch_get_item(RequestItems=request)
                except (ClientError, BotoCoreError) as exc:
                    raise translate(exc, f"BatchGetItem on {self.table} failed") from exc
                for item in response.get("Responses", {}).get(self.table, []):
                    found[(item["source"]["S"], item["metric_name"]["S"])] = _stored(item)
                request = dict(response.get("UnprocessedKeys") or {})
                if not request:
                    break
                time.sleep(self._retry_sleep * 2**attempt)
            else:
                raise TransientError(f"BatchGetItem on {self.table}: keys left unprocessed")
        return found

    def save(self, series: Series, stored: StoredBaseline, samples: Sequence[MetricSample]) -> None:
        """Merge ``samples`` into the baseline and write it, conditional on its revision."""
        for _ in range(_SAVE_ATTEMPTS):
            merged = stored.baseline.merged(samples)
            if merged is stored.baseline:
                return  # every sample already applied
            try:
                self.client.put_item(**self._put(series, merged, stored.revision))
                return
            except ClientError as exc:
                if error_code(exc) != "ConditionalCheckFailedException":
                    raise translate(exc, f"PutItem on {self.table} failed") from exc
            except BotoCoreError as exc:
                raise translate(exc, f"PutItem on {self.table} failed") from exc
            stored = self.load([series])[series]  # someone else wrote: merge with theirs
        raise TransientError(f"baseline {series} kept changing under {_SAVE_ATTEMPTS} saves")

    def _put(self, series: Series, baseline: Baseline, revision: int) -> dict[str, Any]:
        last_ms, last_id, _ = baseline.samples[-1]
        item = {
            **_key(series),
            "samples": {"S": json.dumps([list(s) for s in baseline.samples])},
            "sample_count": {"N": str(len(baseline.samples))},
            "mean": {"N": repr(baseline.mean)},
            "stddev": {"N": repr(baseline.stddev)},
            "last_event_id": {"S": last_id},
            "last_occurred_at": {"S": iso_from_epoch_millis(last_ms)},
            "revision": {"N": str(revision + 1)},
        }
        if revision == 0:
            condition = "attribute_not_exists(#source)"
            names = {"#source": "source"}
            values: dict[str, Any] = {}
        else:
            condition = "#revision = :revision"
            names = {"#revision": "revision"}
            values = {":revision": {"N": str(revision)}}
        put: dict[str, Any] = {
            "TableName": self.table,
            "Item": item,
            "ConditionExpression": condition,
            "ExpressionAttributeNames": names,
        }
        if values:
            put["ExpressionAttributeValues"] = values
        return put


class RecentTransactions:
    """Every user's recent transactions, keyed by event time and event id."""

    def __init__(
        self,
        writer: DynamoWriter,
        table: str,
        *,
        ttl_seconds: int = 86_400,
        ttl_attribute: str = "ttl",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.writer = writer
        self.table = table
        self.ttl_seconds = ttl_seconds
        self.ttl_attribute = ttl_attribute
        self._clock = clock

    def put_for(self, tx: Transaction) -> FactPut:
        """The idempotent put of one transaction (same event, same item)."""
        timestamp = f"{iso_from_epoch_millis(tx.occurred_at_ms)}#{tx.event_id}"
        expires = int(self._clock()) + self.ttl_seconds
        item = {
            "user_id": {"S": tx.user_id},
            "timestamp": {"S": timestamp},
            "event_id": {"S": tx.event_id},
            "transaction_id": {"S": tx.transaction_id},
            "amount": {"N": str(tx.amount)},
            "status": {"S": tx.status},
            self.ttl_attribute: {"N": str(expires)},
        }
        return FactPut(self.table, (tx.user_id, timestamp), item)

    def record(self, puts: Sequence[FactPut]) -> None:
        """Write the puts; raises the writer's errors listing what did not land."""
        if puts:
            self.writer.put_facts(puts)

    def history(self, user_id: str, start_ms: int, end_ms: int) -> list[TxEntry]:
        """The user's transactions with event time in ``[start_ms, end_ms]``, oldest first."""
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "#u = :u AND #t BETWEEN :lo AND :hi",
            "ExpressionAttributeNames": {"#u": "user_id", "#t": "timestamp", "#s": "status"},
            "ExpressionAttributeValues": {
                ":u": {"S": user_id},
                ":lo": {"S": iso_from_epoch_millis(start_ms)},
                ":hi": {"S": iso_from_epoch_millis(end_ms) + "#\uffff"},
            },
            "ProjectionExpression": "#t, #s",
            "ConsistentRead": True,
        }
        entries: list[TxEntry] = []
        while True:
            try:
                page = self.writer.client.query(**kwargs)
            except (ClientError, BotoCoreError) as exc:
                raise translate(exc, f"Query on {self.table} failed") from exc
            for item in page["Items"]:
                iso, _, event_id = item["timestamp"]["S"].partition("#")
                entries.append(TxEntry(_epoch_ms(iso), event_id, item["status"]["S"] == "declined"))
            if "LastEvaluatedKey" not in page:
                return entries
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _key(series: Series) -> dict[str, Any]:
    return {"source": {"S": series[0]}, "metric_name": {"S": series[1]}}


def _stored(item: dict[str, Any]) -> StoredBaseline:
    raw = json.loads(item.get("samples", {}).get("S", "[]"))
    samples = tuple((int(ms), str(eid), float(v)) for ms, eid, v in raw)
    return StoredBaseline(Baseline(samples), int(item.get("revision", {}).get("N", "0")))


def _epoch_ms(iso: str) -> int:
    return round(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)
