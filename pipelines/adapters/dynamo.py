"""DynamoDB adapter: batched fact puts and conditional state updates, with retries.

botocore's errors are translated here, once:

* throttling, ``UnprocessedItems``, server errors and lost connections are
  retried with jittered exponential backoff; when the budget is spent the
  writes that did not land are raised as :class:`UnprocessedItemsError`
  (a :class:`~pipelines.errors.TransientError`) - never dropped;
* a failed condition is not an error: :meth:`DynamoWriter.update` says
  whether the event was stale or a duplicate;
* anything else (validation, missing table, access) is
  :class:`WriteRejectedError`, also carrying what did not land.

Build the client with botocore's own retries off (``max_attempts=1``) so this
module's :class:`~pipelines.consumers.config.RetryPolicy` is the one in charge.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from enum import Enum
from typing import TYPE_CHECKING, Any, NamedTuple

from botocore.exceptions import BotoCoreError, ClientError

from pipelines.adapters.errors import Failure, classify, error_code, translate
from pipelines.adapters.retry import RetryPolicy
from pipelines.errors import PipelineError, TransientError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

AttributeValue = dict[str, Any]
Item = dict[str, AttributeValue]


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
        return self.values[":v"]


Write = FactPut | ConditionalUpdate


MAX_BATCH_ITEMS = 25  # BatchWriteItem's limit


class UnprocessedItemsError(TransientError):
    """Some fact puts did not land within the retry budget."""

    def __init__(self, message: str, unwritten: Sequence[FactPut] = ()) -> None:
        super().__init__(message)
        self.unwritten = list(unwritten)


class WriteRejectedError(PipelineError):
    """DynamoDB refused a write for a reason retrying will not fix."""

    def __init__(self, message: str, code: str, unwritten: Sequence[FactPut] = ()) -> None:
        super().__init__(message)
        self.code = code
        self.unwritten = list(unwritten)


class UpdateOutcome(Enum):
    APPLIED = "applied"
    STALE = "stale"  # the table holds a newer version
    DUPLICATE = "duplicate"  # the table holds this very version


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
            code = error_code(exc) if isinstance(exc, ClientError) else type(exc).__name__
            raise WriteRejectedError(f"{what} rejected ({code}): {exc}", code, unwritten) from exc

    # --- facts ---------------------------------------------------------------------

    def put_facts(self, puts: Sequence[FactPut]) -> int:
        """Put every fact, 25 per ``BatchWriteItem``; returns how many distinct puts landed.

        Puts with the same table and key are sent once (a request may not repeat
        a key, and facts with equal keys are equal). Raises
        :class:`UnprocessedItemsError` or :class:`WriteRejectedError` listing every
        put that did not land, including those of chunks not yet sent.
        """
        unique = list({(p.table, p.key): p for p in reversed(puts)}.values())
        unique.reverse()  # first occurrence wins, original order kept
        for start in range(0, len(unique), MAX_BATCH_ITEMS):
            chunk = unique[start : start + MAX_BATCH_ITEMS]
            try:
                self._put_chunk(chunk)
            except (UnprocessedItemsError, WriteRejectedError) as exc:
                exc.unwritten.extend(unique[start + MAX_BATCH_ITEMS :])
                raise
        return len(unique)

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
        """Apply a conditional update; a failed condition is a skip, not an error."""
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
                return UpdateOutcome.APPLIED
            except ClientError as exc:
                code = error_code(exc)
                if code == "ConditionalCheckFailedException":
                    stored: dict[str, Any] | None = exc.response.get("Item")  # type: ignore[assignment]
                    return _skip_kind(update, stored)
                self._raise_unless_transient(exc, f"UpdateItem on {update.table}")
                last: Exception = exc
            except BotoCoreError as exc:
                self._raise_unless_transient(exc, f"UpdateItem on {update.table}")
                last = exc
        raise TransientError(
            f"UpdateItem on {update.table} did not land after "
            f"{self.retry.max_attempts} attempts: {last}"
        ) from last


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
