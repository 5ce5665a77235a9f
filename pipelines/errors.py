"""The errors the pipeline acts on differently.

Everything raised on purpose derives from :class:`PipelineError`. The runtime
treats the few kinds below differently:

* :class:`PoisonRecordError` - the bytes can never be processed; quarantine
  them (with the bytes and the reason) and move on, never retry.
* :class:`TransientError` - a fault that may pass (throttling, timeouts,
  unprocessed items); retry with backoff, then report as a batch item failure.
* :class:`StaleEventError` - the event is older than (or a duplicate of) what a
  projection already holds; an idempotent skip, not a failure.
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


class EventValidationError(PipelineError):
    """An event handed to the producer or encoder does not fit its schema."""


class SchemaCompatibilityError(PipelineError):
    """A schema change would make earlier events unreadable."""


class TransientError(PipelineError):
    """A fault worth retrying (throttling, timeouts, unprocessed items)."""


class StaleEventError(PipelineError):
    """The event is older than, or a duplicate of, what is already applied."""


class DeliveryError(PipelineError):
    """The producer spent its retry budget; ``undelivered`` did not land."""

    def __init__(self, message: str, undelivered: list, delivered: list) -> None:
        super().__init__(message)
        self.undelivered = undelivered
        self.delivered = delivered
