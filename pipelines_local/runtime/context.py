"""The Lambda context object and environment a handler is invoked with."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from pipelines_local.runtime.discovery import FunctionConfig

# Keys Lambda reserves: a function's own environment cannot override them.
_RESERVED = frozenset(
    {
        "_HANDLER",
        "AWS_EXECUTION_ENV",
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        "AWS_LAMBDA_LOG_GROUP_NAME",
        "AWS_LAMBDA_LOG_STREAM_NAME",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
    }
)


class LambdaContext:
    """What Lambda passes as ``context``: names, request id and the time left.

    Attribute names are those of the Python runtime's context object.
    """

    def __init__(
        self,
        function: FunctionConfig,
        request_id: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.function_name = function.name
        self.function_version = function.version
        self.invoked_function_arn = function.arn
        self.memory_limit_in_mb = str(function.memory_mb)
        self.aws_request_id = request_id or str(uuid.uuid4())
        self.log_group_name = log_group_name(function)
        self.log_stream_name = log_stream_name(function)
        self.identity = None
        self.client_context = None
        self._clock = clock
        self._deadline = clock() + function.timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds until the function's timeout, never below zero."""
        return max(0, int((self._deadline - self._clock()) * 1000))


def log_group_name(function: FunctionConfig) -> str:
    return f"/aws/lambda/{function.name}"


def log_stream_name(function: FunctionConfig) -> str:
    day = datetime.now(UTC).strftime("%Y/%m/%d")
    return f"{day}/[{function.version}]local"


def lambda_environment(
    function: FunctionConfig, base: dict[str, str] | None = None
) -> dict[str, str]:
    """The variables Lambda sets for ``function``.

    ``base`` (where AWS is: endpoint, credentials) comes first, then the function's own
    variables, then the ones Lambda reserves.
    """
    env = dict(base or {})
    env.update({k: v for k, v in function.environment.items() if k not in _RESERVED})
    region = function.region or os.environ.get("AWS_REGION", "")
    env.update(
        {
            "_HANDLER": function.handler,
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{function.runtime}",
            "AWS_LAMBDA_FUNCTION_NAME": function.name,
            "AWS_LAMBDA_FUNCTION_VERSION": function.version,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_mb),
            "AWS_LAMBDA_LOG_GROUP_NAME": log_group_name(function),
            "AWS_LAMBDA_LOG_STREAM_NAME": log_stream_name(function),
        }
    )
    if region:
        env["AWS_REGION"] = region
        env["AWS_DEFAULT_REGION"] = region
    return env


@contextmanager
def function_environment(
    function: FunctionConfig, base: dict[str, str] | None = None
) -> Iterator[dict[str, str]]:
    """Set ``function``'s Lambda environment in ``os.environ``; restore it afterwards."""
    env = lambda_environment(function, base)
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        yield env
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
