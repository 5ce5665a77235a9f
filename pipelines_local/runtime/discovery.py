"""What the runtime runs: event source mappings and function configurations, as deployed.

Everything is read back from the Lambda API (the emulator, LocalStack or AWS), exactly as
Terraform created it; nothing is configured twice. Defaults are AWS's for a field the API
leaves out.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from pipelines_local.runtime.errors import RuntimeConfigError

logger = logging.getLogger(__name__)

KINESIS = "kinesis"
SQS = "sqs"
REPORT_BATCH_ITEM_FAILURES = "ReportBatchItemFailures"

# AWS defaults when a mapping does not set the field.
_DEFAULT_BATCH_SIZE = {KINESIS: 100, SQS: 10}
INFINITE = -1


@dataclass(frozen=True)
class FunctionConfig:
    """The parts of a Lambda function configuration an invocation needs."""

    name: str
    arn: str
    handler: str
    role: str
    timeout_seconds: int = 3
    memory_mb: int = 128
    runtime: str = ""  # as the API reports it (python3.11); empty when it reports none
    version: str = "$LATEST"
    environment: dict[str, str] = field(default_factory=dict)

    @property
    def region(self) -> str:
        return arn_region(self.arn)

    @classmethod
    def from_api(cls, config: dict[str, Any]) -> FunctionConfig:
        """Build from a ``GetFunctionConfiguration`` response."""
        return cls(
            name=config["FunctionName"],
            arn=config["FunctionArn"],
            handler=config.get("Handler") or "",
            role=config.get("Role") or "",
            timeout_seconds=int(config.get("Timeout") or 3),
            memory_mb=int(config.get("MemorySize") or 128),
            runtime=config.get("Runtime") or "",
            version=config.get("Version") or "$LATEST",
            environment=dict((config.get("Environment") or {}).get("Variables") or {}),
        )


@dataclass(frozen=True)
class MappingConfig:
    """One event source mapping, with AWS's defaults filled in."""

    uuid: str
    source_arn: str
    source_kind: str  # KINESIS or SQS
    function: FunctionConfig
    batch_size: int
    batching_window_seconds: float = 0.0
    starting_position: str = "TRIM_HORIZON"
    starting_timestamp: float | None = None
    report_batch_item_failures: bool = False
    bisect_on_error: bool = False
    maximum_retry_attempts: int = INFINITE
    maximum_record_age_seconds: int = INFINITE
    on_failure_destination: str | None = None

    @property
    def region(self) -> str:
        return arn_region(self.source_arn)

    @property
    def label(self) -> str:
        """A short human name: ``function <- source``."""
        return f"{self.function.name} <- {self.source_arn.rsplit(':', 1)[-1]}"

    @classmethod
    def from_api(cls, mapping: dict[str, Any], function: FunctionConfig) -> MappingConfig:
        """Build from a ``ListEventSourceMappings`` entry and its function's configuration."""
        source_arn = mapping["EventSourceArn"]
        kind = source_kind(source_arn)
        timestamp = mapping.get("StartingPositionTimestamp")
        destination = ((mapping.get("DestinationConfig") or {}).get("OnFailure") or {}).get(
            "Destination"
        )
        return cls(
            uuid=mapping["UUID"],
            source_arn=_stream_arn(source_arn) if kind == KINESIS else source_arn,
            source_kind=kind,
            function=function,
            batch_size=int(mapping.get("BatchSize") or _DEFAULT_BATCH_SIZE[kind]),
            batching_window_seconds=float(mapping.get("MaximumBatchingWindowInSeconds") or 0),
            starting_position=mapping.get("StartingPosition") or "TRIM_HORIZON",
            starting_timestamp=timestamp.timestamp() if timestamp is not None else None,
            report_batch_item_failures=REPORT_BATCH_ITEM_FAILURES
            in (mapping.get("FunctionResponseTypes") or []),
            bisect_on_error=bool(mapping.get("BisectBatchOnFunctionError", False)),
            maximum_retry_attempts=_int_or_infinite(mapping.get("MaximumRetryAttempts")),
            maximum_record_age_seconds=_int_or_infinite(mapping.get("MaximumRecordAgeInSeconds")),
            on_failure_destination=destination or None,
        )


def discover_mappings(lambda_client: Any, function_prefix: str = "") -> list[MappingConfig]:
    """Every enabled Kinesis and SQS mapping whose function name starts with ``function_prefix``.

    Mappings of other sources (DynamoDB streams, Kafka) are skipped with a log line. Each
    function's configuration is read once.
    """
    functions: dict[str, FunctionConfig] = {}
    mappings: list[MappingConfig] = []
    for mapping in _list_mappings(lambda_client):
        function_arn = mapping.get("FunctionArn", "")
        name = function_name_of(function_arn)
        if not name.startswith(function_prefix):
            continue
        state = mapping.get("State", "Enabled")
        if state not in ("Enabled", "Enabling", "Creating", "Updating"):
            logger.info("skipping mapping %s of %s: %s", mapping.get("UUID"), name, state)
            continue
        try:
            source_kind(mapping.get("EventSourceArn", ""))
        except RuntimeConfigError as exc:
            logger.info("skipping mapping %s of %s: %s", mapping.get("UUID"), name, exc)
            continue
        if name not in functions:
            config = lambda_client.get_function_configuration(FunctionName=function_arn)
            functions[name] = FunctionConfig.from_api(config)
        _warn_unsupported(mapping, name)
        mappings.append(MappingConfig.from_api(mapping, functions[name]))
    mappings.sort(key=lambda m: (m.function.name, m.source_arn, m.uuid))
    return mappings


def source_kind(arn: str) -> str:
    """``kinesis`` or ``sqs`` for an event source ARN; anything else is not supported."""
    service = arn.split(":")[2] if arn.count(":") >= 5 else ""
    if service in (KINESIS, SQS):
        return service
    raise RuntimeConfigError(f"event source {arn!r} is neither a Kinesis stream nor an SQS queue")


def function_name_of(function_arn: str) -> str:
    """The function name in a function ARN (``...:function:NAME[:QUALIFIER]``)."""
    parts = function_arn.split(":")
    if len(parts) >= 7 and parts[5] == "function":
        return parts[6]
    return function_arn


def arn_region(arn: str) -> str:
    parts = arn.split(":")
    return parts[3] if len(parts) > 3 else ""


def _stream_arn(arn: str) -> str:
    # An enhanced fan-out consumer ARN is ``<stream arn>/consumer/<name>:<ts>``.
    return arn.split("/consumer/", 1)[0]


def _int_or_infinite(value: Any) -> int:
    return INFINITE if value is None else int(value)


def _list_mappings(lambda_client: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for page in lambda_client.get_paginator("list_event_source_mappings").paginate():
        found.extend(page.get("EventSourceMappings", []))
    return found


def _warn_unsupported(mapping: dict[str, Any], name: str) -> None:
    ignored = [
        key
        for key in ("FilterCriteria", "TumblingWindowInSeconds", "ScalingConfig")
        if mapping.get(key)
    ]
    if (mapping.get("ParallelizationFactor") or 1) > 1:
        ignored.append("ParallelizationFactor")
    if ignored:
        logger.warning(
            "mapping %s of %s: %s not applied by the local runtime",
            mapping.get("UUID"),
            name,
            ", ".join(ignored),
        )
