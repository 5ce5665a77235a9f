"""The uploaded objects an S3 event notification (delivered through SQS) names.

S3 sends one ``s3:TestEvent`` when a notification configuration is created: it names no
object and is skipped. Object keys arrive URL-encoded with spaces as ``+``
(``uploads/cat+1.jpg`` is ``uploads/cat 1.jpg``), so they are decoded here, once.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from pipelines.errors import PoisonRecordError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")


class MalformedNotificationError(PoisonRecordError):
    """The message is not an S3 event notification."""

    code = "malformed_notification"


@dataclass(frozen=True)
class UploadedObject:
    """One created object: where it is, and what identifies this version of it."""

    bucket: str
    key: str
    size: int
    etag: str
    version_id: str | None
    event_time: str

    @property
    def identity(self) -> str:
        """What makes a redelivered notification the same upload: the version, else the ETag."""
        return f"s3://{self.bucket}/{self.key}#{self.version_id or self.etag}"


def uploaded_objects(body: str | bytes, prefix: str = "uploads/") -> Iterator[UploadedObject]:
    """The images under ``prefix`` that an SQS message's body reports created.

    Raises :class:`MalformedNotificationError` (with the body) when the body is not an S3
    event notification; yields nothing for ``s3:TestEvent`` and for objects that are not
    images under ``prefix``.
    """
    raw = body.encode() if isinstance(body, str) else bytes(body)
    try:
        message = json.loads(raw)
    except ValueError as error:
        raise MalformedNotificationError(f"not JSON: {error}", raw) from error
    if not isinstance(message, dict):
        raise MalformedNotificationError("not a JSON object", raw)
    if message.get("Event") == "s3:TestEvent":
        return
    records = message.get("Records")
    if not isinstance(records, list):
        raise MalformedNotificationError("no Records in the notification", raw)
    for record in records:
        uploaded = _uploaded(record, raw)
        if uploaded is None:
            continue
        if uploaded.key.startswith(prefix) and uploaded.key.lower().endswith(IMAGE_SUFFIXES):
            yield uploaded


def _uploaded(record: Any, raw: bytes) -> UploadedObject | None:
    if not isinstance(record, dict):
        raise MalformedNotificationError("a record is not a JSON object", raw)
    if not str(record.get("eventName", "")).startswith("ObjectCreated:"):
        return None
    try:
        s3 = record["s3"]
        bucket = s3["bucket"]["name"]
        obj = s3["object"]
        return UploadedObject(
            bucket=str(bucket),
            key=unquote_plus(str(obj["key"])),
            size=int(obj.get("size", 0)),
            etag=str(obj.get("eTag", "")),
            version_id=obj.get("versionId") or None,
            event_time=str(record.get("eventTime", "")),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise MalformedNotificationError(f"a record lacks {error}", raw) from error
