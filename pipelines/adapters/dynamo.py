"""DynamoDB adapter: batched fact puts and conditional state updates, with retries.

botocore's errors are translated here, once:

* throttling, ``UnprocessedItems``, server errors and lost connections are
  retried with jittered exponential backoff; when the budget is spent the
  writes that did not land are raised as :class:`UnprocessedItemsError`
  (a :class:`~pipelines.errors.TransientError`) - never dropped;
* a failed condition is not an error: :meth:`DynamoWriter.update` says
  whether the event was stale or a duplicate, and :meth:`DynamoWriter.merge`
  re-plans its write from the item the failed condition hands back;
* a missing table or denied access is a
  :class:`~pipelines.errors.MisconfigurationError`, raised at once;
* anything else (a validation error: an item over 400 KB, a key too long, a
  number out of range) is :class:`WriteRejectedError`, carrying DynamoDB's own
  message and what did not land.

A rejection is isolated to the item it is about: :meth:`DynamoWriter.write_facts`
re-sends a rejected ``BatchWriteItem`` chunk one put at a time, so the good puts of
the chunk land and only the rejected ones are reported, and it goes on with the
chunks after it.

:func:`item_size` counts an item's bytes the way DynamoDB does, so that callers can
check the limits (:data:`MAX_ITEM_BYTES`, :data:`MAX_PARTITION_KEY_BYTES`,
:data:`MAX_SORT_KEY_BYTES`) before they write.

Build the client with botocore's own retries off (``max_attempts=1``) so this
module's :class:`~pipelines.consumers.config.RetryPolicy` is the one in charge.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from pipelines.adapters.errors import Failure, classify, error_code, translate
from pipelines.adapters.retry import RetryPolicy
from pipelines.errors import PipelineError, TransientError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

AttributeValue = dict[str, Any]
Item = dict[str, AttributeValue]

# DynamoDB's limits (Developer Guide, "Quotas": items, attributes and keys).
MAX_ITEM_BYTES = 400 * 1024  # attribute names and values, as item_size counts them
MAX_PARTITION_KEY_BYTES = 2048
MAX_SORT_KEY_BYTES = 1024


class FactPut(NamedTuple):
    """An unconditional, idempotent put of an item keyed by its event."""

    table: str
    key: tuple[str, ...]  # the key attributes' values: unique per table and event
    item: Item


class ConditionalUpdate(NamedTuple):
    """An ``UpdateItem`` that applies only to newer state."""

    table: str
    key: Item
    update: str
    condition: str
    names: dict[str, str]
    values: Item
    version_attribute: str  # equal stored version = duplicate, greater = stale

    @property
    def version(self) -> AttributeValue:
        return self.values.get(":v", {})


Write = FactPut | ConditionalUpdate


class StateMerge(Protocol):
    """A state write that is planned again from the stored item whenever its condition fails.

    :meth:`first` is the write to try without having read the item; when DynamoDB
    refuses a write's condition it hands back the item as stored (``None``: there is
    none), and :meth:`replan` says what to write over *that*, or that nothing of the
    event applies any more (stale or duplicate).
    """

    @property
    def table(self) -> str: ...

    def first(self) -> ConditionalUpdate: ...

    def replan(self, stored: Item | None) -> ConditionalUpdate | UpdateOutcome: ...


MAX_BATCH_ITEMS = 25  # BatchWriteItem's limit
MAX_MERGE_ROUNDS = 8  # writes of one merge whose condition another writer may beat


class UnprocessedItemsError(TransientError):
    """Some fact puts did not land within the retry budget."""

    def __init__(self, message: str, unwritten: Sequence[FactPut] = ()) -> None:
        super().__init__(message)
        self.unwritten = list(unwritten)


class WriteRejectedError(PipelineError):
    """DynamoDB refused a write for a reason retrying will not fix.

    ``code`` is DynamoDB's error code (``ValidationException``), ``reason`` its message
    (``Item size has exceeded the maximum allowed size``).
    """

    def __init__(
        self, message: str, code: str, unwritten: Sequence[FactPut] = (), *, reason: str = ""
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason or message
        self.unwritten = list(unwritten)


class UpdateOutcome(Enum):
    APPLIED = "applied"
    STALE = "stale"  # the table holds a newer version
    DUPLICATE = "duplicate"  # the table holds this very version


@dataclass(slots=True)
class FactsWritten:
    """What became of the puts of one :meth:`DynamoWriter.write_facts` call.

    Every distinct put is in exactly one list: it landed, DynamoDB rejected it (with the
    rejection), or it did not land within the retry budget (``unwritten``, because of
    ``error``: worth another delivery).
    """

    landed: list[FactPut] = field(default_factory=list)
    rejected: list[tuple[FactPut, WriteRejectedError]] = field(default_factory=list)
    unwritten: list[FactPut] = field(default_factory=list)
    error: UnprocessedItemsError | None = None


class DynamoWriter:
    """Writes projections through an injected low-level DynamoDB client."""

    def __init__(
        self,
        client: DynamoDBClient,
        retry: RetryPolicy | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.client = client
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self._jitter = jitter

    def backoff(self, attempt: int) -> None:
        """Sleep before retry number ``attempt`` (1-based): full jitter, capped."""
        self._sleep(self.retry.delay(attempt, self._jitter))

    @staticmethod
    def _raise_unless_transient(
        exc: ClientError | BotoCoreError, what: str, unwritten: Sequence[FactPut] = ()
    ) -> None:
        kind = classify(exc)
        if kind is Failure.MISCONFIGURATION:
            raise translate(exc, what) from exc
        if kind is Failure.REJECTED:
            if isinstance(exc, ClientError):
                code = error_code(exc)
                reason = str(exc.response.get("Error", {}).get("Message") or exc)
            else:
                code, reason = type(exc).__name__, str(exc)
            raise WriteRejectedError(
                f"{what} rejected ({code}): {exc}", code, unwritten, reason=reason
            ) from exc

    # --- facts ---------------------------------------------------------------------

    def put_facts(self, puts: Sequence[FactPut]) -> int:
        """Put every fact, 25 per ``BatchWriteItem``; returns how many distinct puts landed.

        Puts with the same table and key are sent once (a request may not repeat
        a key, and facts with equal keys are equal). Raises
        :class:`UnprocessedItemsError` or :class:`WriteRejectedError` listing every
        put that did not land (:meth:`write_facts` says which fared how).
        """
        written = self.write_facts(puts)
        rejected = [put for put, _ in written.rejected]
        if written.error is not None:
            raise UnprocessedItemsError(
                str(written.error), [*written.unwritten, *rejected]
            ) from written.error
        if written.rejected:
            first = written.rejected[0][1]
            raise WriteRejectedError(
                f"{len(rejected)} puts rejected; the first: {first}",
                first.code,
                rejected,
                reason=first.reason,
            ) from first
        return len(written.landed)

    def write_facts(self, puts: Sequence[FactPut]) -> FactsWritten:
        """Put every fact, 25 per ``BatchWriteItem``, and say what became of each.

        Puts with the same table and key are sent once. A chunk that DynamoDB rejects
        as a whole (one item over 400 KB rejects all 25) is sent again one put at a
        time, so that only the puts it is about are rejected; the chunks after it are
        still sent. Once a chunk's retry budget is spent on transient faults, the puts
        not yet sent are left unwritten too (the table is struggling; the records are
        delivered again anyway). Raises only
        :class:`~pipelines.errors.MisconfigurationError`.
        """
        unique = list({(p.table, p.key): p for p in reversed(puts)}.values())
        unique.reverse()  # first occurrence wins, original order kept
        written = FactsWritten()
        for start in range(0, len(unique), MAX_BATCH_ITEMS):
            chunk = unique[start : start + MAX_BATCH_ITEMS]
            if written.error is not None:
                written.unwritten.extend(chunk)
                continue
            try:
                self._put_chunk(chunk)
            except UnprocessedItemsError as exc:
                left = _keys(exc.unwritten)
                written.landed.extend(p for p in chunk if (p.table, p.key) not in left)
                written.unwritten.extend(exc.unwritten)
                written.error = exc
                continue
            except WriteRejectedError as exc:
                left = _keys(exc.unwritten)
                written.landed.extend(p for p in chunk if (p.table, p.key) not in left)
                if len(exc.unwritten) == 1:
                    written.rejected.append((exc.unwritten[0], exc))
                else:
                    self._put_singly(exc.unwritten, written)
                continue
            written.landed.extend(chunk)
        return written

    def _put_singly(self, puts: list[FactPut], written: FactsWritten) -> None:
        """Isolate a rejected chunk: each put on its own, until a transient fault stops it."""
        for n, put in enumerate(puts):
            try:
                self._put_chunk([put])
            except WriteRejectedError as exc:
                written.rejected.append((put, exc))
                continue
            except UnprocessedItemsError as exc:
                written.unwritten.extend(puts[n:])
                written.error = exc
                return
            written.landed.append(put)

    def _put_chunk(self, chunk: list[FactPut]) -> None:
        pending = chunk
        for attempt in range(1, self.retry.max_attempts + 1):
            if attempt > 1:
                self.backoff(attempt - 1)
            try:
                response = self.client.batch_write_item(RequestItems=_request_items(pending))
            except (ClientError, BotoCoreError) as exc:
                self._raise_unless_transient(exc, "BatchWriteItem", pending)
                last: Exception = exc
                continue
            unprocessed = response.get("UnprocessedItems") or {}
            if not unprocessed:
                return
            pending = _unprocessed_puts(pending, unprocessed)
            last = UnprocessedItemsError(f"{len(pending)} items unprocessed")
        raise UnprocessedItemsError(
            f"{len(pending)} of {len(chunk)} puts did not land after "
            f"{self.retry.max_attempts} attempts: {last}",
            pending,
        ) from last

    # --- state ---------------------------------------------------------------------

    def update(self, update: ConditionalUpdate) -> UpdateOutcome:
        """Apply a conditional update; a failed condition is a skip, not an error.

        Raises :class:`WriteRejectedError` when DynamoDB rejects the update itself (the
        item it would make is over 400 KB, say), :class:`~pipelines.errors.TransientError`
        when the retry budget is spent.
        """
        applied, stored = self._conditional_update(update)
        return UpdateOutcome.APPLIED if applied else _skip_kind(update, stored)

    def merge(self, merge: StateMerge) -> UpdateOutcome:
        """Apply a state merge: its first write, then, while a condition fails, its re-plan.

        Each failed condition hands back the item as stored (``ALL_OLD``), so a re-plan
        costs no read. Raises as :meth:`update` does, and
        :class:`~pipelines.errors.TransientError` when other writers kept changing the
        item for :data:`MAX_MERGE_ROUNDS` writes.
        """
        write = merge.first()
        for _ in range(MAX_MERGE_ROUNDS):
            applied, stored = self._conditional_update(write)
            if applied:
                return UpdateOutcome.APPLIED
            plan = merge.replan(stored)
            if isinstance(plan, UpdateOutcome):
                return plan
            write = plan
        raise TransientError(
            f"UpdateItem on {merge.table}: the item kept changing under "
            f"{MAX_MERGE_ROUNDS} conditional writes"
        )

    def _conditional_update(self, update: ConditionalUpdate) -> tuple[bool, Item | None]:
        """(True, None) when applied; (False, the stored item or None) when the condition failed."""
        what = f"UpdateItem on {update.table}"
        for attempt in range(1, self.retry.max_attempts + 1):
            if attempt > 1:
                self.backoff(attempt - 1)
            try:
                self.client.update_item(
                    TableName=update.table,
                    Key=update.key,
                    UpdateExpression=update.update,
                    ConditionExpression=update.condition,
                    ExpressionAttributeNames=update.names,
                    ExpressionAttributeValues=update.values,
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
                return True, None
            except ClientError as exc:
                if error_code(exc) == "ConditionalCheckFailedException":
                    stored: Item | None = exc.response.get("Item")  # type: ignore[assignment]
                    return False, stored
                self._raise_unless_transient(exc, what)
                last: Exception = exc
            except BotoCoreError as exc:
                self._raise_unless_transient(exc, what)
                last = exc
        raise TransientError(
            f"{what} did not land after {self.retry.max_attempts} attempts: {last}"
        ) from last


# --- sizes -------------------------------------------------------------------------


def item_size(item: Item) -> int:
    """An item's size as DynamoDB counts it against :data:`MAX_ITEM_BYTES`.

    The UTF-8 bytes of every attribute name plus its value's :func:`attribute_size`
    (Developer Guide, "Item sizes and formats").
    """
    return sum(_utf8_size(name) + attribute_size(value) for name, value in item.items())


def attribute_size(value: AttributeValue) -> int:
    """The bytes of one attribute value, its name not counted.

    Strings count their UTF-8 bytes, binary its raw bytes, a number one byte per two
    significant digits plus one, a boolean or null one byte; a list or map 3 bytes plus,
    per element, 1 byte and the element (and, in a map, its key's UTF-8 bytes).
    """
    for kind, data in value.items():
        if kind == "S":
            return _utf8_size(data)
        if kind == "N":
            return _number_size(data)
        if kind == "M":
            return 3 + sum(_utf8_size(k) + attribute_size(v) + 1 for k, v in data.items())
        if kind == "L":
            return 3 + sum(attribute_size(v) + 1 for v in data)
        if kind == "B":
            return len(data)
        if kind in ("BOOL", "NULL"):
            return 1
        if kind == "SS":
            return sum(_utf8_size(s) for s in data)
        if kind == "NS":
            return sum(_number_size(n) for n in data)
        if kind == "BS":
            return sum(len(b) for b in data)
        raise ValueError(f"not a DynamoDB attribute value type: {kind!r}")
    raise ValueError("an attribute value needs a type")


def _utf8_size(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def _number_size(text: str) -> int:
    mantissa = text.lstrip("+-").partition("e")[0].partition("E")[0]
    digits = mantissa.replace(".", "").strip("0")
    return (len(digits) + 1) // 2 + 1


# --- requests ----------------------------------------------------------------------


def _keys(puts: Sequence[FactPut]) -> set[tuple[str, tuple[str, ...]]]:
    return {(p.table, p.key) for p in puts}


def _request_items(puts: Sequence[FactPut]) -> dict[str, Any]:
    request: dict[str, list[dict[str, Any]]] = {}
    for put in puts:
        request.setdefault(put.table, []).append({"PutRequest": {"Item": put.item}})
    return request


def _unprocessed_puts(sent: list[FactPut], unprocessed: dict[str, Any]) -> list[FactPut]:
    """The puts DynamoDB handed back, matched to what was sent (falls back to all)."""
    left = []
    for table, requests in unprocessed.items():
        candidates = [p for p in sent if p.table == table]
        for request in requests:
            item = request.get("PutRequest", {}).get("Item")
            match = next((p for p in candidates if p.item == item), None)
            if match is None:
                return sent  # cannot tell which: resend everything (puts are idempotent)
            left.append(match)
    return left


def _skip_kind(update: ConditionalUpdate, stored: dict[str, Any] | None) -> UpdateOutcome:
    if stored and stored.get(update.version_attribute) == update.version:
        return UpdateOutcome.DUPLICATE
    return UpdateOutcome.STALE
