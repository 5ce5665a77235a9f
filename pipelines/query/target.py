"""Where a workspace's lake is: bucket, Glue database and Athena workgroup.

Names follow the Terraform root module: everything is named ``<project>-<workspace>``
(``local.name``); the lake bucket is ``<name>-lake-<account id>``
(``modules/storage``), the Glue database ``<name>`` with ``-`` as ``_`` and the
workgroup ``<name>`` (``modules/catalog``).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlparse

import pyarrow.fs as pafs

from pipelines.runtime.workspace import PROJECT


@dataclass(frozen=True, slots=True)
class LakeTarget:
    lake_bucket: str
    database: str
    workgroup: str

    @classmethod
    def for_workspace(
        cls, workspace: str, account_id: str = "", project: str = PROJECT
    ) -> LakeTarget:
        name = f"{project}-{workspace}"
        return cls(
            lake_bucket=f"{name}-lake-{account_id}",
            database=name.replace("-", "_"),
            workgroup=name,
        )


def emulator_filesystem(endpoint: str, env: dict[str, str]) -> pafs.S3FileSystem:
    """pyarrow's S3 filesystem on ``endpoint`` with the emulator's credentials."""
    parsed = urlparse(endpoint)
    return pafs.S3FileSystem(
        region=env["AWS_REGION"],
        endpoint_override=parsed.netloc or endpoint,
        scheme=parsed.scheme or "http",
        access_key=env["AWS_ACCESS_KEY_ID"],
        secret_key=env["AWS_SECRET_ACCESS_KEY"],
    )
