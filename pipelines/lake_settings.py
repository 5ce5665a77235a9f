"""The lake writer's configuration, read once from environment variables.

Terraform sets these names as the Lambda function's environment variables and
the local runtime sets the same ones; nothing else reads the environment.

Required: ``LAKE_BUCKET`` (Parquet datasets, one per event type, at the
bucket's root as the Glue tables expect), ``ARCHIVE_BUCKET`` (Avro object
container files of the exact event bytes) and ``QUARANTINE_BUCKET``.

Optional, with defaults:

* ``ARCHIVE_PREFIX`` (``events``) - key prefix of the archive's partitions;
* ``LAKE_COMPRESSION`` (``zstd``) - Parquet codec, ``zstd`` or ``snappy``;
* ``WRITE_CONCURRENCY`` (8) - objects uploaded at once;
* ``POWERTOOLS_SERVICE_NAME`` (``lake-writer``) - service name, and the quarantine key prefix;
* ``POWERTOOLS_METRICS_NAMESPACE`` (``Pipelines``) - CloudWatch namespace;
* ``AWS_REGION`` / ``AWS_DEFAULT_REGION`` (``us-east-1``) - the buckets' region;
* ``AWS_ENDPOINT_URL`` (unset: AWS) - the emulator's or LocalStack's endpoint.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

from pipelines.settings import SettingsError

COMPRESSIONS = ("zstd", "snappy")


@dataclass(frozen=True, slots=True)
class LakeSettings:
    """Everything the lake writer needs to know about its environment."""

    lake_bucket: str
    archive_bucket: str
    quarantine_bucket: str
    archive_prefix: str = "events"
    compression: str = "zstd"
    write_concurrency: int = 8
    service_name: str = "lake-writer"
    metrics_namespace: str = "Pipelines"
    region: str = "us-east-1"
    endpoint_url: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> LakeSettings:
        env = os.environ if environ is None else environ
        compression = (env.get("LAKE_COMPRESSION") or "zstd").strip().lower()
        if compression not in COMPRESSIONS:
            raise SettingsError(
                f"LAKE_COMPRESSION must be one of {COMPRESSIONS}, got {compression!r}"
            )
        concurrency = (env.get("WRITE_CONCURRENCY") or "8").strip()
        if not concurrency.isdigit() or int(concurrency) < 1:
            raise SettingsError(
                f"WRITE_CONCURRENCY must be a whole number >= 1, got {concurrency!r}"
            )
        return cls(
            lake_bucket=_required(env, "LAKE_BUCKET"),
            archive_bucket=_required(env, "ARCHIVE_BUCKET"),
            quarantine_bucket=_required(env, "QUARANTINE_BUCKET"),
            archive_prefix=(env.get("ARCHIVE_PREFIX") or "events").strip("/"),
            compression=compression,
            write_concurrency=int(concurrency),
            service_name=env.get("POWERTOOLS_SERVICE_NAME") or "lake-writer",
            metrics_namespace=env.get("POWERTOOLS_METRICS_NAMESPACE") or "Pipelines",
            region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
            endpoint_url=env.get("AWS_ENDPOINT_URL") or None,
        )


@lru_cache(maxsize=1)
def load_lake_settings() -> LakeSettings:
    """The settings of this process, read from the environment on first use."""
    return LakeSettings.from_env()


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise SettingsError(f"environment variable {name} is not set")
    return value
