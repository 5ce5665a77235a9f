"""The state the alert rules need, in DynamoDB: baselines and recent transactions.

* ``metric_baselines`` (``source`` + ``metric_name``): the last
  :data:`~pipelines.consumers.alerts.rules.BASELINE_RETAINED` samples of a series as JSON
  ``[[epoch ms, event id, value], ...]`` (``samples``), the newest sample let go
  (``horizon``, JSON ``[epoch ms, event id]``, absent while none was), their ``mean``,
  ``stddev`` (left out when DynamoDB cannot hold the number), ``sample_count``, the last
  sample (``last_event_id``, ``last_occurred_at``) and a ``revision``. Saving merges by
  event id under a condition on the revision read, so a re-delivered sample never moves
  the baseline twice and a concurrent writer is merged with, not overwritten.
* ``recent_transactions`` (``user_id`` + ``timestamp``), three kinds of item, all
  written with deterministic keys and contents (a re-delivery rewrites the same items)
  and expiring after a day:

  - one per transaction event, ``timestamp = <ISO time>#<event id>``: its
    ``transaction_id``, ``status``, ``amount``, ``currency``, ``aggregate_version``;
  - one per transaction, ``timestamp = txn#<transaction id>``: every event of it
    (``events``, JSON ``[[epoch ms, aggregate version, event id, status], ...]``, the
    latest :data:`TRANSACTION_EVENTS_KEPT`), so that a transaction resolves to its latest
    event wherever in time its events lie;
  - one per mark, ``timestamp = <ISO time>#<event id>#<rule>``: the transaction stood
    there, over the limit, in a burst alerted as ``alert_id``.

  A user's window is a ``Query`` on event time, returning events and marks, so late or
  re-delivered events count where they happened. The per-transaction item is written
  read-modify-write: one user's events come from one shard, so from one invocation at a
  time, and a re-delivery merges the same events again.

botocore errors are translated by :func:`pipelines.adapters.errors.translate`: transient
faults retry, a missing table or denied access fails loudly, and a write DynamoDB
rejects for what it holds is :class:`~pipelines.adapters.dynamo.WriteRejectedError`.
:func:`sample_problem` and :func:`transaction_problem` say beforehand what DynamoDB
would reject.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, NamedTuple

from botocore.exceptions import BotoCoreError, ClientError

from pipelines.adapters.dynamo import DynamoWriter, FactPut, WriteRejectedError
from pipelines.adapters.errors import Failure, classify, error_code, translate
from pipelines.consumers.alerts.rules import (
    WINDOW_RULES,
    Baseline,
    BaselineSample,
    MetricSample,
    Transaction,
)
from pipelines.consumers.alerts.windows import Mark, Marked, TxEvent, tx_event
from pipelines.contract.timestamps import iso_from_epoch_millis
from pipelines.errors import TransientError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

Series = tuple[str, str]  # (source, metric name)
TransactionKey = tuple[str, str]  # (user id, transaction id)
_BATCH_GET_MAX = 100
_SAVE_ATTEMPTS = 5
TRANSACTION_EVENTS_KEPT = 50
_TRANSACTION_PREFIX = "txn#"

# What DynamoDB holds (its documented limits), for telling a bad value before writing it.
HASH_KEY_MAX_BYTES = 2048
RANGE_KEY_MAX_BYTES = 1024
EVENT_ID_MAX_BYTES = 900  # inside sort keys (with time and rule) and alert ids
_NUMBER_DIGITS_MAX = 38
_NUMBER_MAGNITUDE = (Decimal("1E-130"), Decimal("1E+126"))  # smallest held, first too big
_LAST_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z: the last time ISO text sorts
_LONGEST_RULE = max(len(rule) for rule in WINDOW_RULES)
_ISO_CHARS = len("2026-11-02T12:00:00.000Z")


class StoredBaseline:
    """A baseline as read, with the revision a save is conditional on (0: no item)."""

    __slots__ = ("baseline", "revision")

    def __init__(self, baseline: Baseline, revision: int) -> None:
        self.baseline = baseline
        self.revision = revision


class TransactionHistory(NamedTuple):
    """What was read of one user: transaction events, marks, and the time range read."""

    events: list[TxEvent]
    marks: list[Marked]
    span: tuple[int, int] | None = None


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


def transaction_problem(tx: Transaction) -> str | None:
    """Why ``tx`` cannot be kept in ``recent_transactions``, naming the field; else ``None``."""
    problem = _common_problem(tx.event_id, tx.occurred_at_ms) or _key_problem(
        "user_id", tx.user_id, HASH_KEY_MAX_BYTES
    )
    if problem:
        return problem
    room = RANGE_KEY_MAX_BYTES - _ISO_CHARS - 2 - _LONGEST_RULE
    if _utf8(tx.event_id) > room:
        return f"metadata.event_id is over {room} bytes: it is part of a sort key"
    if _utf8(tx.transaction_id) > RANGE_KEY_MAX_BYTES - len(_TRANSACTION_PREFIX):
        return "transaction_id is too long for a DynamoDB sort key"
    amount = tx.amount
    if not isinstance(amount, Decimal) or not amount.is_finite():
        return f"amount is {amount!r}, not a finite decimal"
    if amount and not _number_fits(amount):
        return f"amount {amount} is beyond what a DynamoDB number holds"
    version = tx.aggregate_version
    if not isinstance(version, int) or not -(10**38) < version < 10**38:
        return "metadata.aggregate_version is beyond what a DynamoDB number holds"
    return None


def largest_text(tx: Transaction) -> tuple[str, int]:
    """The transaction's text field that takes most room in its items, and its bytes."""
    fields = {
        "user_id": tx.user_id,
        "transaction_id": tx.transaction_id,
        "currency": tx.currency,
        "status": tx.status,
        "metadata.event_id": tx.event_id,
    }
    name = max(fields, key=lambda f: _utf8(str(fields[f])))
    return name, _utf8(str(fields[name]))


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


# --- baselines ---------------------------------------------------------------------------


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
        keys = [_series_key(s) for s in wanted]
        for item in _batch_get(self.client, self.table, keys, self._retry_sleep):
            found[(item["source"]["S"], item["metric_name"]["S"])] = _stored(item)
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
            **_series_key(series),
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


# --- recent transactions -------------------------------------------------------------------


class RecentTransactions:
    """Every user's recent transactions and marks, keyed by event time and event id."""

    def __init__(
        self,
        writer: DynamoWriter,
        table: str,
        *,
        ttl_seconds: int = 86_400,
        ttl_attribute: str = "ttl",
        clock: Callable[[], float] = time.time,
        retry_sleep: float = 0.05,
    ) -> None:
        self.writer = writer
        self.table = table
        self.ttl_seconds = ttl_seconds
        self.ttl_attribute = ttl_attribute
        self._clock = clock
        self._retry_sleep = retry_sleep

    # --- writes ---------------------------------------------------------------------

    def put_for(self, tx: Transaction) -> FactPut:
        """The idempotent put of one transaction event (same event, same item)."""
        timestamp = f"{iso_from_epoch_millis(tx.occurred_at_ms)}#{tx.event_id}"
        item = {
            "user_id": {"S": tx.user_id},
            "timestamp": {"S": timestamp},
            "event_id": {"S": tx.event_id},
            "transaction_id": {"S": tx.transaction_id},
            "amount": {"N": str(tx.amount)},
            "currency": {"S": tx.currency},
            "status": {"S": tx.status},
            "aggregate_version": {"N": str(tx.aggregate_version)},
            **self._expiry(),
        }
        return FactPut(self.table, (tx.user_id, timestamp), item)

    def transaction_put(
        self, user_id: str, transaction_id: str, events: Iterable[TxEvent]
    ) -> FactPut:
        """The put of a transaction's item: every event of it known (the latest kept)."""
        unique: dict[str, TxEvent] = {}
        for event in events:
            unique.setdefault(event.event_id, event)
        kept = sorted(unique.values(), key=_order)[-TRANSACTION_EVENTS_KEPT:]
        timestamp = _TRANSACTION_PREFIX + transaction_id
        item = {
            "user_id": {"S": user_id},
            "timestamp": {"S": timestamp},
            "transaction_id": {"S": transaction_id},
            "events": {"S": json.dumps([_event_json(e) for e in kept])},
            **self._expiry(),
        }
        return FactPut(self.table, (user_id, timestamp), item)

    def mark_put(self, user_id: str, mark: Mark) -> FactPut:
        """The put of a mark: this transaction, where it stands, is in an alerted burst."""
        event = mark.event
        timestamp = f"{iso_from_epoch_millis(event.occurred_at_ms)}#{event.event_id}#{mark.rule}"
        item = {
            "user_id": {"S": user_id},
            "timestamp": {"S": timestamp},
            "event_id": {"S": event.event_id},
            "transaction_id": {"S": event.transaction_id},
            "rule": {"S": mark.rule},
            "alert_id": {"S": mark.alert_id},
            **self._expiry(),
        }
        return FactPut(self.table, (user_id, timestamp), item)

    def record(self, puts: Sequence[FactPut]) -> None:
        """Write the puts; raises the writer's errors listing what did not land."""
        if puts:
            self.writer.put_facts(puts)

    def _expiry(self) -> dict[str, Any]:
        return {self.ttl_attribute: {"N": str(int(self._clock()) + self.ttl_seconds)}}

    # --- reads ----------------------------------------------------------------------

    def transactions(self, keys: Iterable[TransactionKey]) -> dict[TransactionKey, list[TxEvent]]:
        """Every known event of each transaction (none for a transaction never seen)."""
        wanted = list(dict.fromkeys(keys))
        found: dict[TransactionKey, list[TxEvent]] = {k: [] for k in wanted}
        requests = [
            {"user_id": {"S": user}, "timestamp": {"S": _TRANSACTION_PREFIX + tid}}
            for user, tid in wanted
        ]
        for item in _batch_get(self.writer.client, self.table, requests, self._retry_sleep):
            key = (item["user_id"]["S"], item["transaction_id"]["S"])
            found[key] = [_event_from_json(key[1], e) for e in json.loads(item["events"]["S"])]
        return found

    def history(self, user_id: str, start_ms: int, end_ms: int) -> TransactionHistory:
        """The user's transaction events and marks with event time in ``[start_ms, end_ms]``."""
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "#u = :u AND #t BETWEEN :lo AND :hi",
            "ExpressionAttributeNames": {
                "#u": "user_id",
                "#t": "timestamp",
                "#s": "status",
                "#r": "rule",
                "#v": "aggregate_version",
            },
            "ExpressionAttributeValues": {
                ":u": {"S": user_id},
                ":lo": {"S": iso_from_epoch_millis(max(start_ms, 0))},
                ":hi": {"S": iso_from_epoch_millis(min(end_ms, _LAST_MS)) + "#\uffff"},
            },
            "ProjectionExpression": (
                "#t, #s, #r, #v, event_id, transaction_id, amount, currency, alert_id"
            ),
            "ConsistentRead": True,
        }
        history = TransactionHistory([], [], (start_ms, end_ms))
        while True:
            try:
                page = self.writer.client.query(**kwargs)
            except (ClientError, BotoCoreError) as exc:
                raise translate(exc, f"Query on {self.table} failed") from exc
            for item in page["Items"]:
                _read_history_item(item, history)
            if "LastEvaluatedKey" not in page:
                return history
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _read_history_item(item: dict[str, Any], history: TransactionHistory) -> None:
    iso, _, rest = item["timestamp"]["S"].partition("#")
    ms = _epoch_ms(iso)
    event_id = item.get("event_id", {}).get("S") or rest
    transaction_id = item.get("transaction_id", {}).get("S", event_id)
    if "rule" in item:
        history.marks.append(
            Marked(item["rule"]["S"], transaction_id, event_id, item["alert_id"]["S"])
        )
        return
    history.events.append(
        TxEvent(
            ms,
            event_id,
            transaction_id,
            item.get("status", {}).get("S", ""),
            int(item.get("aggregate_version", {}).get("N", "0")),
            item.get("amount", {}).get("N", ""),
            item.get("currency", {}).get("S", ""),
        )
    )


def _order(event: TxEvent) -> tuple[int, int, str]:
    return event.order


def _event_json(event: TxEvent) -> list[Any]:
    """What resolving a transaction needs of one of its events (the rest is in its item)."""
    return [event.occurred_at_ms, event.aggregate_version, event.event_id, event.status]


def _event_from_json(transaction_id: str, raw: list[Any]) -> TxEvent:
    ms, version, event_id, status = raw[:4]
    return TxEvent(int(ms), str(event_id), transaction_id, str(status), int(version))


def transaction_events(txs: Iterable[Transaction]) -> dict[TransactionKey, list[TxEvent]]:
    """The events of ``txs`` by transaction, as the windows see them."""
    out: dict[TransactionKey, list[TxEvent]] = {}
    for tx in txs:
        out.setdefault((tx.user_id, tx.transaction_id), []).append(tx_event(tx))
    return out


# --- shared -------------------------------------------------------------------------------


def _batch_get(
    client: DynamoDBClient, table: str, keys: list[dict[str, Any]], retry_sleep: float
) -> list[dict[str, Any]]:
    """Every item of ``keys`` that exists (consistent reads), 100 keys per request."""
    items: list[dict[str, Any]] = []
    for start in range(0, len(keys), _BATCH_GET_MAX):
        chunk = keys[start : start + _BATCH_GET_MAX]
        request: dict[str, Any] = {table: {"Keys": chunk, "ConsistentRead": True}}
        for attempt in range(8):
            try:
                response = client.batch_get_item(RequestItems=request)
            except (ClientError, BotoCoreError) as exc:
                raise translate(exc, f"BatchGetItem on {table} failed") from exc
            items.extend(response.get("Responses", {}).get(table, []))
            request = dict(response.get("UnprocessedKeys") or {})
            if not request:
                break
            time.sleep(retry_sleep * 2**attempt)
        else:
            raise TransientError(f"BatchGetItem on {table}: keys left unprocessed")
    return items


def _series_key(series: Series) -> dict[str, Any]:
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
