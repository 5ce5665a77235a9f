"""The state the alert rules need, in DynamoDB: baselines and recent transactions.

* ``metric_baselines`` (``source`` + ``metric_name``): the last
  :data:`~pipelines.consumers.alerts.rules.BASELINE_RETAINED` samples of a series as JSON
  ``[[epoch ms, event id, value], ...]`` (``samples``), the newest sample let go
  (``horizon``, JSON ``[epoch ms, event id]``, absent while none was), their ``mean``,
  ``stddev`` (left out when DynamoDB cannot hold the number), ``sample_count``, the last
  sample (``last_event_id``, ``last_occurred_at``) and a ``revision``. Saving merges by
  event id under a condition on the revision read, so a re-delivered sample never moves
  the baseline twice and a concurrent writer is merged with, not overwritten.
* ``recent_transactions`` (``user_id`` + ``timestamp`` = ``<ISO time>#<event id>``):
  one item per transaction, written with a deterministic key (a re-delivery
  rewrites the same item), expiring after a day. A user's window is a ``Query``
  on event time, so late or re-delivered events count where they happened.

botocore errors are translated by :func:`pipelines.adapters.errors.translate`: transient
faults retry, a missing table or denied access fails loudly, and a baseline DynamoDB
rejects for what it holds is :class:`~pipelines.adapters.dynamo.WriteRejectedError`.
:func:`sample_problem` says beforehand what DynamoDB would reject.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from pipelines.adapters.dynamo import DynamoWriter, FactPut, WriteRejectedError
from pipelines.adapters.errors import Failure, classify, error_code, translate
from pipelines.consumers.alerts.rules import (
    Baseline,
    BaselineSample,
    MetricSample,
    Transaction,
    TxEntry,
)
from pipelines.contract.timestamps import iso_from_epoch_millis
from pipelines.errors import TransientError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

Series = tuple[str, str]  # (source, metric name)
_BATCH_GET_MAX = 100
_SAVE_ATTEMPTS = 5

# What DynamoDB holds (its documented limits), for telling a bad value before writing it.
HASH_KEY_MAX_BYTES = 2048
RANGE_KEY_MAX_BYTES = 1024
EVENT_ID_MAX_BYTES = 900  # inside sort keys (with time and rule) and alert ids
_NUMBER_DIGITS_MAX = 38
_NUMBER_MAGNITUDE = (Decimal("1E-130"), Decimal("1E+126"))  # smallest held, first too big
_LAST_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z: the last time ISO text sorts


class StoredBaseline:
    """A baseline as read, with the revision a save is conditional on (0: no item)."""

    __slots__ = ("baseline", "revision")

    def __init__(self, baseline: Baseline, revision: int) -> None:
        self.baseline = baseline
        self.revision = revision


# --- what DynamoDB would reject -----------------------------------------------------------


def _utf8(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def _key_problem(field: str, value: Any, max_bytes: int) -> str | None:
    if not isinstance(value, str) or not value:
        return f"{field} is empty: a DynamoDB key cannot be"
    if _utf8(value) > max_bytes:
        return f"{field} is {_utf8(value)} bytes: a DynamoDB key holds at most {max_bytes}"
    return None


def _common_problem(event_id: Any, occurred_at_ms: Any) -> str | None:
    if not isinstance(event_id, str) or not event_id:
        return "metadata.event_id is empty"
    if _utf8(event_id) > EVENT_ID_MAX_BYTES:
        return f"metadata.event_id is over {EVENT_ID_MAX_BYTES} bytes: it is part of keys"
    if not isinstance(occurred_at_ms, int) or not 0 <= occurred_at_ms <= _LAST_MS:
        return "metadata.occurred_at is outside the years 1970-9999 that keys can sort"
    return None


def sample_problem(sample: MetricSample) -> str | None:
    """Why ``sample`` cannot be kept in a baseline, naming the field; ``None`` if it can."""
    value = sample.value
    if isinstance(value, bool) or not isinstance(value, float | int):
        return "value is not a number"
    if not math.isfinite(value):
        return f"value is {value!r}, not a finite number"
    return (
        _common_problem(sample.event_id, sample.occurred_at_ms)
        or _key_problem("source", sample.source, HASH_KEY_MAX_BYTES)
        or _key_problem("metric_name", sample.metric_name, RANGE_KEY_MAX_BYTES)
    )


def _number_fits(value: Decimal) -> bool:
    digits = "".join(map(str, value.as_tuple().digits)).strip("0")  # significant digits
    low, high = _NUMBER_MAGNITUDE
    return len(digits) <= _NUMBER_DIGITS_MAX and low <= abs(value) < high


def _number(value: float) -> str | None:
    """``value`` as a DynamoDB number, or ``None`` when DynamoDB cannot hold it."""
    if not math.isfinite(value):
        return None
    if value == 0:
        return "0"
    text = repr(value)
    return text if _number_fits(Decimal(text)) else None


def _rejected_or_translated(exc: ClientError | BotoCoreError, what: str) -> Exception:
    if classify(exc) is Failure.REJECTED:
        code = error_code(exc) if isinstance(exc, ClientError) else type(exc).__name__
        return WriteRejectedError(f"{what} rejected ({code}): {exc}", code)
    return translate(exc, what)


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

    def save(
        self, series: Series, stored: StoredBaseline, samples: Sequence[MetricSample]
    ) -> StoredBaseline:
        """Merge ``samples`` into the baseline and write it, conditional on its revision.

        Returns what is stored now. Raises :class:`WriteRejectedError` when DynamoDB
        refuses the item for what it holds.
        """
        for _ in range(_SAVE_ATTEMPTS):
            merged = stored.baseline.merged(samples)
            if merged is stored.baseline:
                return stored  # every sample already applied
            try:
                self.client.put_item(**self._put(series, merged, stored.revision))
                return StoredBaseline(merged, stored.revision + 1)
            except ClientError as exc:
                if error_code(exc) != "ConditionalCheckFailedException":
                    what = f"PutItem of baseline {series} on {self.table}"
                    raise _rejected_or_translated(exc, what) from exc
            except BotoCoreError as exc:
                raise translate(exc, f"PutItem on {self.table} failed") from exc
            stored = self.load([series])[series]  # someone else wrote: merge with theirs
        raise TransientError(f"baseline {series} kept changing under {_SAVE_ATTEMPTS} saves")

    def _put(self, series: Series, baseline: Baseline, revision: int) -> dict[str, Any]:
        last_ms, last_id, _ = baseline.samples[-1]
        item: dict[str, Any] = {
            **_key(series),
            "samples": {"S": json.dumps([list(s) for s in baseline.samples], allow_nan=False)},
            "sample_count": {"N": str(len(baseline.samples))},
            "last_event_id": {"S": last_id},
            "last_occurred_at": {"S": iso_from_epoch_millis(last_ms)},
            "revision": {"N": str(revision + 1)},
        }
        for name, value in (("mean", baseline.mean), ("stddev", baseline.stddev)):
            number = _number(value)
            if number is not None:  # informational: the samples are what is read back
                item[name] = {"N": number}
        if baseline.horizon is not None:
            item["horizon"] = {"S": json.dumps(list(baseline.horizon))}
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
    samples: list[BaselineSample] = []
    for ms, eid, value in raw:
        if isinstance(value, int | float) and math.isfinite(value):  # never keep a NaN
            samples.append((int(ms), str(eid), float(value)))
    horizon_raw = item.get("horizon", {}).get("S")
    horizon = None
    if horizon_raw:
        ms, eid = json.loads(horizon_raw)
        horizon = (int(ms), str(eid))
    revision = int(item.get("revision", {}).get("N", "0"))
    return StoredBaseline(Baseline(tuple(sorted(samples)), horizon), revision)


def _epoch_ms(iso: str) -> int:
    return round(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)
