"""Import the handler a function configuration names and invoke it in-process, as Lambda does."""

from __future__ import annotations

import importlib
import json
import logging
import sys
import time
import uuid
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pipelines
from pipelines_local.runtime.context import LambdaContext, function_environment
from pipelines_local.runtime.discovery import FunctionConfig
from pipelines_local.runtime.errors import HandlerImportError
from pipelines_local.runtime.logs import FunctionOutput

logger = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any], LambdaContext], Any]

# Handlers such as ``functions.projector.handler.lambda_handler`` live beside the package.
PROJECT_ROOT = str(Path(pipelines.__file__).resolve().parents[1])


@dataclass(frozen=True)
class Invocation:
    """The outcome of one invocation.

    ``function_error`` is set (``"Unhandled"``, as Lambda's ``X-Amz-Function-Error``) when the
    handler raised, could not be imported, or returned something that is not JSON; ``response``
    is the handler's return value after a JSON round trip, as Lambda serialises it.
    """

    request_id: str
    response: Any
    function_error: str | None
    error_message: str | None
    duration_seconds: float
    timed_out: bool

    @property
    def failed(self) -> bool:
        return self.function_error is not None


def resolve_handler(handler: str) -> Handler:
    """``"package.module.function"`` to the function, imported from ``sys.path``.

    The project root is put on ``sys.path`` first, as Lambda's task root is.
    """
    if PROJECT_ROOT not in sys.path:
        sys.path.append(PROJECT_ROOT)
    module_name, _, attribute = handler.rpartition(".")
    if not module_name or not attribute:
        raise HandlerImportError(f"handler {handler!r} is not of the form 'module.function'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise HandlerImportError(f"cannot import module {module_name!r}: {exc}") from exc
    function = getattr(module, attribute, None)
    if not callable(function):
        raise HandlerImportError(f"handler {attribute!r} missing on module {module_name!r}")
    handler_function: Handler = function
    return handler_function


class Invoker:
    """Invokes functions in this process, one at a time, with their Lambda environment."""

    def __init__(
        self,
        base_environment: dict[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._base = dict(base_environment or {})
        self._clock = clock
        self._handlers: dict[str, Handler] = {}
        self.output: FunctionOutput | None = None  # set while a runtime captures output

    def invoke(self, function: FunctionConfig, event: dict[str, Any]) -> Invocation:
        request_id = str(uuid.uuid4())
        started = time.monotonic()
        capture = self.output.function(function.name) if self.output else nullcontext()
        with function_environment(function, self._base), capture:
            context = LambdaContext(function, request_id, clock=self._clock)
            try:
                handler = self._handler(function)
                raw = handler(event, context)
                response = json.loads(json.dumps(raw))
            except Exception as exc:  # a function error, whatever the handler raised
                return self._failed(function, request_id, started, exc)
        duration = time.monotonic() - started
        timed_out = duration > function.timeout_seconds
        if timed_out:
            logger.warning(
                "%s took %.1fs, over its %ds timeout (not enforced in-process); request %s",
                function.name,
                duration,
                function.timeout_seconds,
                request_id,
            )
        return Invocation(request_id, response, None, None, duration, timed_out)

    def _handler(self, function: FunctionConfig) -> Handler:
        if function.handler not in self._handlers:
            self._handlers[function.handler] = resolve_handler(function.handler)
        return self._handlers[function.handler]

    def _failed(
        self, function: FunctionConfig, request_id: str, started: float, exc: Exception
    ) -> Invocation:
        message = f"{type(exc).__name__}: {exc}"
        logger.warning("%s failed (request %s): %s", function.name, request_id, message)
        logger.debug("handler traceback", exc_info=exc)
        duration = time.monotonic() - started
        return Invocation(request_id, None, "Unhandled", message, duration, False)
