"""Lambda: event source mappings are configuration that our local runtime acts on."""

from __future__ import annotations

from typing import Any

from moto.awslambda.models import EventSourceMapping, LambdaBackend
from moto.dynamodb.models import dynamodb_backends
from moto.kinesis.models import kinesis_backends
from moto.sqs.models import sqs_backends

from pipelines_local.emulator.patches.base import Patch, Patcher


def _install_mappings_metadata_only(patcher: Patcher) -> None:
    """Event source mappings are stored and read back, never executed by the emulator.

    On AWS, Lambda's pollers drive the mapped function. Locally our runtime plays that part: it
    reads the mappings Terraform created and polls the shards and queues itself. moto 5.2.5 also
    tries to run the function (in Docker) on every Kinesis put, SQS send and DynamoDB stream
    record of a mapped source: without Docker each Kinesis put waits for the failed attempt
    (about 700 records/s), and SQS messages are received behind the runtime's back, so their
    receive count grows and they end up in the dead-letter queue.

    moto runs a mapping by registering it on its source (queue, stream or table) when it is
    created; this patch creates the mapping as usual and then takes it off the source again.
    ``CreateEventSourceMapping``, ``GetEventSourceMapping``, ``ListEventSourceMappings``,
    ``UpdateEventSourceMapping`` and ``DeleteEventSourceMapping`` behave as before.
    """
    create_mapping = LambdaBackend.create_event_source_mapping

    def create_event_source_mapping(
        self: LambdaBackend, spec: dict[str, Any]
    ) -> EventSourceMapping:
        mapping = create_mapping(self, spec)
        _detach_from_sources(mapping, self.account_id, self.region_name)
        return mapping

    patcher.replace(LambdaBackend, "create_event_source_mapping", create_event_source_mapping)


def _detach_from_sources(mapping: EventSourceMapping, account_id: str, region: str) -> None:
    sources: list[Any] = [
        *sqs_backends[account_id][region].queues.values(),
        *kinesis_backends[account_id][region].streams.values(),
        *dynamodb_backends[account_id][region].tables.values(),
    ]
    for source in sources:
        registered: dict[str, Any] = getattr(source, "lambda_event_source_mappings", {})
        for key in [key for key, value in registered.items() if value is mapping]:
            del registered[key]


MAPPINGS_METADATA_ONLY = Patch(
    name="lambda_mappings_metadata_only",
    restores="event source mappings are configuration only; the emulator never invokes them",
    install=_install_mappings_metadata_only,
)
