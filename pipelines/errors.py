"""The errors the pipeline acts on differently.

Everything raised on purpose derives from :class:`PipelineError`. The batch kernel
(:mod:`pipelines.consumers.batch`) treats three kinds of failure differently:

* :class:`PoisonRecordError` - the bytes can never be processed; quarantine them (with
  the bytes and the reason) and move on, never retry.
* :class:`TransientError` - a fault that may pass (throttling, timeouts, unprocessed
  items); retry with backoff, then report the record as a batch item failure so that
  Lambda re-delivers it.
* :class:`MisconfigurationError` - the deployment is wrong (access denied, a missing
  table or topic): retrying cannot help and skipping would lose events, so the
  invocation fails loudly and the mapping retries it until someone fixes the stack.

A stale or duplicate event is not an error at all: projections report it as an
outcome (:class:`pipelines.adapters.dynamo.UpdateOutcome`) and skip it.
"""

from __future__ import annotations


class PipelineError(Exception):
    """Root of every error the pipeline raises on purpose."""


class PoisonRecordError(PipelineError):
    """A record that can never be decoded or applied.

    Carries the raw bytes so that the quarantine keeps them, and a short,
    machine-readable ``code`` next to the human ``reason``.
    """

    code = "poison_record"

    def __init__(self, reason: str, raw: bytes) -> None:
        super().__init__(reason)
        self.reason = reason
        self.raw = bytes(raw)


class UnknownSchemaError(PoisonRecordError):
    """The writer schema's fingerprint is not among the shipped schemas."""

    code = "unknown_schema"


class CorruptRecordError(PoisonRecordError):
    """The bytes are truncated, corrupt or not in the wire format at all."""

    code = "corrupt_record"


class InvalidEventError(PoisonRecordError):
    """The record decodes but breaks its schema's rules."""

    code = "invalid_event"


class ConflictingDuplicateError(PoisonRecordError):
    """A second, different event under an event id already seen: an id reused, not a retry."""

    code = "conflicting_duplicate"


class EventValidationError(PipelineError):
    """An event handed to the producer or encoder does not fit its schema."""


class SchemaCompatibilityError(PipelineError):
    """A schema change would make earlier events unreadable."""


class TransientError(PipelineError):
    """A fault worth retrying (throttling, timeouts, unprocessed items)."""


class MisconfigurationError(PipelineError):
    """The deployment is wrong: access denied, a resource missing, a setting malformed."""


class DeliveryError(PipelineError):
    """The producer spent its retry budget; ``undelivered`` did not land."""

    def __init__(self, message: str, undelivered: list, delivered: list) -> None:
        super().__init__(message)
        self.undelivered = undelivered
        self.delivered = delivered
