"""Files under a prefix, listed with their size and age, and deleted: S3 or a local folder.

What the lake's orphan-file removal needs of storage, and no more. On AWS the tables live at
``s3://<lake bucket>/<table>/`` and are listed through an injected boto3 client; in unit
tests at ``file:///...`` and listed through the filesystem. :func:`stored_files_for` picks
by the location's scheme.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import unquote, urlparse

from botocore.exceptions import BotoCoreError, ClientError

from pipelines.adapters.errors import translate
from pipelines.errors import MisconfigurationError, TransientError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_DELETE_BATCH = 1000  # DeleteObjects' limit


@dataclass(frozen=True, slots=True)
class StoredFile:
    """One file: its URI (``s3://bucket/key`` or ``file:///path``), size and last change."""

    uri: str
    size: int
    modified: datetime


class StoredFiles(Protocol):
    """Lists and deletes files by URI."""

    def list(self, prefix: str) -> Iterator[StoredFile]:
        """Every file whose URI starts with ``prefix`` (a folder URI ending in ``/``)."""
        ...

    def delete(self, uris: Sequence[str]) -> None:
        """Delete the files; one that is already gone is not an error."""
        ...


def normalized_uri(uri: str) -> str:
    """``uri`` in the one spelling listings and Iceberg metadata are compared in."""
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        return "file://" + os.path.normpath(unquote(parsed.path))
    if parsed.scheme in ("s3a", "s3n"):
        return "s3://" + uri.split("://", 1)[1]
    return uri


class LocalFiles:
    """Files of the local filesystem, by ``file://`` URI."""

    def list(self, prefix: str) -> Iterator[StoredFile]:
        root = Path(urlparse(prefix).path)
        if not root.is_dir():
            return
        for path in sorted(root.rglob("*")):
            if path.is_file():
                stat = path.stat()
                yield StoredFile(
                    normalized_uri(f"file://{path}"),
                    stat.st_size,
                    datetime.fromtimestamp(stat.st_mtime, UTC),
                )

    def delete(self, uris: Sequence[str]) -> None:
        for uri in uris:
            Path(urlparse(uri).path).unlink(missing_ok=True)


class S3Files:
    """Objects of S3 buckets, by ``s3://`` URI, through an injected client."""

    def __init__(self, client: S3Client) -> None:
        self.client = client

    def list(self, prefix: str) -> Iterator[StoredFile]:
        bucket, key_prefix = _bucket_and_key(prefix)
        pages = self.client.get_paginator("list_objects_v2")
        try:
            for page in pages.paginate(Bucket=bucket, Prefix=key_prefix):
                for item in page.get("Contents", []):
                    yield StoredFile(
                        f"s3://{bucket}/{item['Key']}", int(item["Size"]), item["LastModified"]
                    )
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, f"could not list {prefix}") from exc

    def delete(self, uris: Sequence[str]) -> None:
        by_bucket: dict[str, list[str]] = {}
        for uri in uris:
            bucket, key = _bucket_and_key(uri)
            by_bucket.setdefault(bucket, []).append(key)
        for bucket, keys in by_bucket.items():
            for start in range(0, len(keys), _DELETE_BATCH):
                objects: Any = [{"Key": k} for k in keys[start : start + _DELETE_BATCH]]
                try:
                    response = self.client.delete_objects(
                        Bucket=bucket, Delete={"Objects": objects, "Quiet": True}
                    )
                except (ClientError, BotoCoreError) as exc:
                    raise translate(exc, f"could not delete objects of s3://{bucket}") from exc
                errors = response.get("Errors", [])
                if errors:
                    first = errors[0]
                    message = (
                        f"could not delete {len(errors)} objects of s3://{bucket}, "
                        f"first {first.get('Key')}: {first.get('Code')} {first.get('Message')}"
                    )
                    if first.get("Code") == "AccessDenied":
                        raise MisconfigurationError(message)
                    raise TransientError(message)


def stored_files_for(location: str, s3_client: S3Client | None = None) -> StoredFiles:
    """The storage of a table at ``location``: S3 (through ``s3_client``) or local."""
    scheme = urlparse(location).scheme
    if scheme in ("", "file"):
        return LocalFiles()
    if scheme in ("s3", "s3a", "s3n"):
        if s3_client is None:
            raise MisconfigurationError(f"listing {location} needs an S3 client")
        return S3Files(s3_client)
    raise MisconfigurationError(f"no listing for {scheme}:// locations ({location})")


def _bucket_and_key(uri: str) -> tuple[str, str]:
    parsed = urlparse(normalized_uri(uri))
    return parsed.netloc, parsed.path.lstrip("/")
