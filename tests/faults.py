"""Fault injection for DynamoDB through botocore's event hooks on a real client.

moto (in-process or as the emulator) never throttles and never returns
``UnprocessedItems``; these hooks make a real client see both, the way AWS
shows them, without replacing the client. :class:`Reject` refuses a whole request
for one item in it, before anything of it is written, as AWS does (moto writes the
items ahead of the bad one).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from botocore.awsrequest import AWSResponse


class Throttle:
    """The next ``times`` calls of ``operation`` fail with a throttling error (-1: all)."""

    def __init__(
        self,
        client: Any,
        operation: str,
        times: int = -1,
        code: str = "ProvisionedThroughputExceededException",
    ) -> None:
        self.remaining = times
        self.code = code
        self.calls = 0
        client.meta.events.register(f"before-call.dynamodb.{operation}", self._before_call)

    def _before_call(self, **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        self.calls += 1
        if self.remaining == 0:
            return None
        self.remaining -= 1
        response = AWSResponse("https://dynamodb.local", 400, {}, None)
        parsed = {
            "Error": {"Code": self.code, "Message": "Rate of requests exceeds the allowed rate"},
            "ResponseMetadata": {"HTTPStatusCode": 400},
        }
        return response, parsed


class HoldBack:
    """``BatchWriteItem`` leaves matching puts unwritten and hands them back as unprocessed.

    ``matches(item)`` picks the items; each is held back ``times`` times (-1: always).
    """

    def __init__(
        self, client: Any, matches: Callable[[dict[str, Any]], bool], times: int = -1
    ) -> None:
        self.matches = matches
        self.times = times
        self.held: dict[str, int] = {}
        self.calls = 0
        self._pending: dict[str, list[dict[str, Any]]] = {}
        self._nothing_left = False
        events = client.meta.events
        events.register("before-parameter-build.dynamodb.BatchWriteItem", self._strip)
        events.register("before-call.dynamodb.BatchWriteItem", self._skip_empty_call)
        events.register("after-call.dynamodb.BatchWriteItem", self._hand_back)

    def _strip(self, params: dict[str, Any], **_: Any) -> None:
        self.calls += 1
        pending: dict[str, list[dict[str, Any]]] = {}
        remaining: dict[str, list[dict[str, Any]]] = {}
        for table, requests in params["RequestItems"].items():
            for request in requests:
                item = request["PutRequest"]["Item"]
                key = repr(sorted(item.items()))
                if self.matches(item) and self.held.get(key, 0) != self.times:
                    self.held[key] = self.held.get(key, 0) + 1
                    pending.setdefault(table, []).append(request)
                else:
                    remaining.setdefault(table, []).append(request)
        self._pending = pending
        self._nothing_left = not remaining
        if remaining:
            params["RequestItems"] = remaining

    def _skip_empty_call(self, **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        if not self._nothing_left:
            return None
        response = AWSResponse("https://dynamodb.local", 200, {}, None)
        return response, {"UnprocessedItems": {}, "ResponseMetadata": {"HTTPStatusCode": 200}}

    def _hand_back(self, parsed: dict[str, Any], **_: Any) -> None:
        if self._pending:
            unprocessed = parsed.setdefault("UnprocessedItems", {})
            for table, requests in self._pending.items():
                unprocessed.setdefault(table, []).extend(requests)
        self._pending = {}
        self._nothing_left = False


class Reject:
    """DynamoDB refuses every write request holding a matching item, whole, as AWS does.

    One item DynamoDB cannot take (too large, say) fails its whole ``BatchWriteItem``
    request with a ``ValidationException``, and an ``UpdateItem`` of it fails alone.
    moto applies the items of a batch before the bad one; this hook refuses the request
    before anything of it is written, as AWS does. ``matches(item)`` is given each put's
    item, or an update's key and expression values merged.
    """

    MESSAGE = "Item size has exceeded the maximum allowed size"

    def __init__(
        self,
        client: Any,
        matches: Callable[[dict[str, Any]], bool],
        code: str = "ValidationException",
        message: str = MESSAGE,
    ) -> None:
        self.matches = matches
        self.code = code
        self.message = message
        self.rejected = 0
        self._call = threading.local()  # the projector sends updates from several threads
        events = client.meta.events
        for operation in ("BatchWriteItem", "UpdateItem"):
            events.register(f"before-parameter-build.dynamodb.{operation}", self._inspect)
            events.register(f"before-call.dynamodb.{operation}", self._before_call)

    def _inspect(self, params: dict[str, Any], **_: Any) -> None:
        if "RequestItems" in params:
            items = [
                request["PutRequest"]["Item"]
                for requests in params["RequestItems"].values()
                for request in requests
            ]
        else:
            items = [{**params["Key"], **params.get("ExpressionAttributeValues", {})}]
        self._call.reject = any(self.matches(item) for item in items)

    def _before_call(self, **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        if not getattr(self._call, "reject", False):
            return None
        self._call.reject = False
        self.rejected += 1
        response = AWSResponse("https://dynamodb.local", 400, {}, None)
        parsed = {
            "Error": {"Code": self.code, "Message": self.message},
            "ResponseMetadata": {"HTTPStatusCode": 400},
        }
        return response, parsed
