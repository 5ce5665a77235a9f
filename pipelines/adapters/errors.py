"""botocore's errors, translated once into the kinds the batch kernel acts on.

Every adapter catches ``ClientError`` and ``BotoCoreError`` and hands them to
:func:`classify` (or :func:`translate`), so that one table decides, for every AWS call the
pipeline makes, whether a failure is worth retrying:

* **transient** - throttling, a service's internal error, a lost connection or a timeout:
  retry with backoff, then report the record so Lambda re-delivers it;
* **misconfiguration** - access denied, a missing table, bucket, topic or key, bad
  credentials: retrying cannot help and skipping would lose events, so it is raised as
  :class:`~pipelines.errors.MisconfigurationError` and fails the invocation loudly;
* **rejected** - anything else: the service refused this request for what it holds (a
  validation error, say). Adapters raise their own error for it, carrying what did not land.
"""

from __future__ import annotations

from enum import Enum

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    NoCredentialsError,
    NoRegionError,
    ParamValidationError,
    PartialCredentialsError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from pipelines.errors import MisconfigurationError, PipelineError, TransientError

TRANSIENT_CODES = frozenset(
    {
        # DynamoDB
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "ThrottlingException",
        "InternalServerError",
        "TransactionConflictException",
        # Kinesis, SNS, S3 and the rest
        "LimitExceededException",
        "InternalFailure",
        "InternalError",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "SlowDown",
        "Throttling",
        "ThrottledException",
        "RequestTimeout",
        "RequestTimeoutException",
        "KMSThrottlingException",
    }
)
MISCONFIGURATION_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "AuthorizationError",
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "ExpiredTokenException",
        "ResourceNotFoundException",
        "NotFound",
        "NotFoundException",
        "NoSuchBucket",
        "KMSAccessDeniedException",
        "KMSDisabledException",
        "KMSInvalidStateException",
        "KMSNotFoundException",
    }
)


class Failure(Enum):
    TRANSIENT = "transient"
    MISCONFIGURATION = "misconfiguration"
    REJECTED = "rejected"


def error_code(exc: ClientError) -> str:
    """The service's error code of a ``ClientError`` (``Unknown`` when it has none)."""
    return str(exc.response.get("Error", {}).get("Code", "Unknown"))


def classify(exc: BaseException) -> Failure:
    """What kind of failure an exception raised by a boto3 call is."""
    if isinstance(exc, ClientError):
        code = error_code(exc)
        if code in TRANSIENT_CODES:
            return Failure.TRANSIENT
        if code in MISCONFIGURATION_CODES:
            return Failure.MISCONFIGURATION
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return Failure.TRANSIENT if int(status or 0) >= 500 else Failure.REJECTED
    if isinstance(exc, BotoConnectionError | HTTPClientError):  # lost connections, timeouts
        return Failure.TRANSIENT
    if isinstance(exc, NoCredentialsError | PartialCredentialsError | NoRegionError):
        return Failure.MISCONFIGURATION
    if isinstance(exc, ParamValidationError):  # the request itself is malformed
        return Failure.REJECTED
    if isinstance(exc, BotoCoreError):  # a read that broke off, a checksum that failed
        return Failure.TRANSIENT
    return Failure.REJECTED


def translate(exc: BaseException, what: str) -> PipelineError:
    """The pipeline error to raise ``from exc`` for a failed call described by ``what``.

    A rejection becomes a :class:`~pipelines.errors.TransientError` here: the adapters that
    can tell a rejected *value* apart catch :attr:`Failure.REJECTED` themselves, before
    calling this.
    """
    kind = classify(exc)
    if kind is Failure.MISCONFIGURATION:
        return MisconfigurationError(f"{what}: {exc}")
    return TransientError(f"{what}: {exc}")
