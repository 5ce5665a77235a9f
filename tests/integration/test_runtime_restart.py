"""Checkpoints survive the runtime: a restart resumes where the last one settled, losing nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pipelines.stream.producer import Producer
from pipelines_local.runtime import CheckpointStore
from pipelines_local.simulator import simulate
from tests.integration import runtime_handlers as handlers
from tests.integration.runtime_stack import RuntimeStack

pytestmark = pytest.mark.integration


@pytest.fixture
def stack(aws_client: Any, emulator: Any, aws_env: dict[str, str], tmp_path: Path) -> RuntimeStack:
    handlers.reset()
    return RuntimeStack(aws_client, emulator.endpoint_url, tmp_path)


def test_restart_resumes_from_the_checkpoint_without_loss(stack: RuntimeStack) -> None:
    stream_arn = stack.stream(shards=2)
    stack.function("collect_events")
    uuid = stack.mapping(stream_arn, BatchSize=3)
    events = simulate(120, seed=3).events
    producer = Producer(stack.kinesis, stack.stream_name)
    for start in range(0, 60, 10):  # KPL aggregates, a few events each
        producer.put_events(events[start : start + 10])
    Producer(stack.kinesis, stack.stream_name, aggregate=False).put_events(events[60:])

    first = stack.runtime()
    for _ in range(4):
        first.step()
    seen_first = {event_id for call in handlers.CALLS for event_id in call.decoded}
    settled = CheckpointStore(stack.checkpoint_path).snapshot()["mappings"][uuid]["shards"]
    calls_before_restart = len(handlers.CALLS)
    del first  # the runtime stops; only its checkpoint file remains

    second = stack.runtime()
    result = second.run(until_drained=True, max_seconds=30)

    assert result.drained
    assert seen_first and settled  # the first run got part of the way
    after_restart = handlers.CALLS[calls_before_restart:]
    seen_second = [event_id for call in after_restart for event_id in call.decoded]
    expected = {str(event["metadata"]["event_id"]) for event in events}
    assert seen_first | set(seen_second) == expected  # nothing lost
    assert not seen_first & set(seen_second)  # settled batches are not delivered again
    for call in after_restart:
        for record in call.event["Records"]:
            shard_id, sequence_number = record["eventID"].split(":")
            if shard_id in settled:
                assert int(sequence_number) > int(settled[shard_id])


def test_checkpoint_file_is_kept_per_mapping_and_shard(stack: RuntimeStack) -> None:
    stream_arn = stack.stream()
    stack.function("succeed")
    uuid = stack.mapping(stream_arn, BatchSize=10)
    sequence = stack.put("a", "b")

    stack.runtime().run(until_drained=True, max_seconds=20)

    stored = CheckpointStore(stack.checkpoint_path).snapshot()["mappings"][uuid]
    assert stored["shards"] == {"shardId-000000000000": sequence[-1]}
    assert stored["source"] == stream_arn
    assert stored["function"] == stack.function_name
    assert stack.runtime().run(until_drained=True, max_seconds=20).stats.batches == 0
