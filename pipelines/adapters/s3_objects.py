"""Whole objects through boto3's S3 client, for a function that has no pyarrow.

:class:`~pipelines.adapters.objects.ObjectStore` writes through pyarrow's filesystem, which
only the lake writer's runtime has (the lake layer). The archiver writes a
handful of Avro files a batch and needs nothing more than ``PutObject``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from pipelines.adapters.errors import translate

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

ObjectWrite = tuple[str, str, bytes]  # bucket, key, data


class S3Objects:
    """Puts whole objects with an injected S3 client."""

    def __init__(self, client: S3Client) -> None:
        self.client = client

    def put(self, bucket: str, key: str, data: bytes) -> None:
        """Write one object.

        Raises :class:`~pipelines.errors.TransientError` if S3 does not take it, or
        :class:`~pipelines.errors.MisconfigurationError` when the bucket is missing or the
        function may not write to it.
        """
        try:
            self.client.put_object(
                Bucket=bucket, Key=key, Body=data, ContentType="application/octet-stream"
            )
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, f"could not write s3://{bucket}/{key}") from exc

    def put_all(self, writes: Sequence[ObjectWrite]) -> None:
        """Write every object, in order; the first failure is raised."""
        for bucket, key, data in writes:
            self.put(bucket, key, data)
