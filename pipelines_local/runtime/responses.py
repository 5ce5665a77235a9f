"""Reading a handler's partial batch response the way Lambda reads it.

``{"batchItemFailures": [{"itemIdentifier": "<id>"}, ...]}``: the identifier is the record's
sequence number (Kinesis) or message id (SQS). Lambda treats the batch as a complete success
when the response, or its ``batchItemFailures`` list, is null or empty, and as a complete failure
when an identifier is empty, null, under a wrong key, or names no record of the batch.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class BatchResponse:
    """What a response means: every record succeeded, some failed, or the whole batch failed."""

    failed_ids: frozenset[str] = frozenset()
    whole_batch_failed: bool = False
    reason: str = ""

    @property
    def succeeded(self) -> bool:
        return not self.failed_ids and not self.whole_batch_failed


def read_batch_response(response: Any, batch_ids: Collection[str]) -> BatchResponse:
    """Interpret ``response`` for a batch whose record identifiers are ``batch_ids``."""
    if not isinstance(response, dict):
        return BatchResponse()
    failures = response.get("batchItemFailures")
    if not failures:
        return BatchResponse()
    if not isinstance(failures, list):
        return BatchResponse(whole_batch_failed=True, reason="batchItemFailures is not a list")
    known = set(batch_ids)
    failed: set[str] = set()
    for item in failures:
        identifier = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not isinstance(identifier, str) or not identifier:
            return BatchResponse(
                whole_batch_failed=True, reason=f"malformed batch item failure {item!r}"
            )
        if identifier not in known:
            return BatchResponse(
                whole_batch_failed=True,
                reason=f"itemIdentifier {identifier!r} names no record of the batch",
            )
        failed.add(identifier)
    return BatchResponse(failed_ids=frozenset(failed))
