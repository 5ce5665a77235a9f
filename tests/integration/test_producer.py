"""The producer against the embedded emulator: nothing lost, nothing doubled, order kept per key."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from typing import Any

import pytest

from pipelines.adapters.retry import RetryPolicy
from pipelines.contract.events import new_event
from pipelines.errors import DeliveryError
from pipelines.stream.producer import MAX_BYTES_PER_REQUEST, Producer
from pipelines.stream.records import decode_stream_record
from pipelines_local.simulator import simulate

pytestmark = pytest.mark.integration

FAST_RETRY = RetryPolicy(max_attempts=30, base_delay=0.001, max_delay=0.01)


class Throttle:
    """Fails a fraction of PutRecords entries the way Kinesis does, via botocore's event hooks.

    Chosen entries are taken out of the request before it is sent (so the emulator never
    stores them) and put back into the parsed response as
    ``ProvisionedThroughputExceededException`` results at their original positions.
    """

    def __init__(self, client: Any, fraction: float, seed: int = 7) -> None:
        self.fraction = fraction
        self.rng = random.Random(seed)
        self.failed = 0
        self.requests: list[list[dict[str, Any]]] = []
        events = client.meta.events
        events.register("before-parameter-build.kinesis.PutRecords", self._drop)
        events.register("after-call.kinesis.PutRecords", self._restore)

    def _drop(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        records = params["Records"]
        self.requests.append(list(records))
        failed = {i for i in range(len(records)) if self.rng.random() < self.fraction}
        context["throttled"] = (len(records), failed)
        params["Records"] = [r for i, r in enumerate(records) if i not in failed] or records[:0]

    def _restore(self, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        total, failed = context.pop("throttled", (0, set()))
        if not failed or "Records" not in parsed:
            return
        sent = iter(parsed["Records"])
        parsed["Records"] = [
            {
                "ErrorCode": "ProvisionedThroughputExceededException",
                "ErrorMessage": "Rate exceeded for shard in stream under account.",
            }
            if i in failed
            else next(sent)
            for i in range(total)
        ]
        parsed["FailedRecordCount"] = parsed.get("FailedRecordCount", 0) + len(failed)
        self.failed += len(failed)


def _stream(kinesis: Any, name: str, shards: int) -> str:
    kinesis.create_stream(StreamName=name, ShardCount=shards)
    kinesis.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 0.1})
    return name


def _read_back(kinesis: Any, stream: str) -> list[tuple[str, str, int, str, str]]:
    """Every event on every shard: (shard, sequence, sub-sequence, aggregate id, event id).

    The aggregate id is the ordering key consumers use; an aggregate's user records all
    carry the aggregate's one partition key.
    """
    out = []
    for shard in kinesis.list_shards(StreamName=stream)["Shards"]:
        iterator = kinesis.get_shard_iterator(
            StreamName=stream, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while iterator:
            page = kinesis.get_records(ShardIterator=iterator, Limit=10000)
            for record in page["Records"]:
                decoded = decode_stream_record(
                    record["Data"],
                    partition_key=record["PartitionKey"],
                    sequence_number=record["SequenceNumber"],
                    shard_id=shard["ShardId"],
                )
                assert decoded.poison == []
                for delivered in decoded.events:
                    event = delivered.event
                    out.append(
                        (
                            shard["ShardId"],
                            decoded.sequence_number,
                            delivered.sub_sequence_number,
                            event.metadata["aggregate_id"],
                            event.event_id,
                        )
                    )
            if not page["Records"]:
                break
            iterator = page.get("NextShardIterator")
    return out


def _assert_exactly_once_in_order(produced: list[dict[str, Any]], read: list[tuple]) -> None:
    counts = Counter(r[4] for r in read)
    expected = [str(e["metadata"]["event_id"]) for e in produced]
    assert set(counts) == set(expected), "an event is missing or unknown"
    assert max(counts.values()) == 1, "an event landed twice"

    shards_of_key: dict[str, set[str]] = defaultdict(set)
    read_order: dict[str, list[str]] = defaultdict(list)
    for shard, _seq, _sub, key, event_id in sorted(read, key=lambda r: (r[0], int(r[1]), r[2])):
        shards_of_key[key].add(shard)
        read_order[key].append(event_id)
    produced_order: dict[str, list[str]] = defaultdict(list)
    for e in produced:
        produced_order[e["metadata"]["aggregate_id"]].append(str(e["metadata"]["event_id"]))
    assert all(len(s) == 1 for s in shards_of_key.values()), "a key's events span shards"
    assert read_order == produced_order, "order per partition key was not kept"


@pytest.fixture(scope="module")
def workload() -> list[dict[str, Any]]:
    return simulate(20_000, seed=42).events


def test_twenty_thousand_events_land_exactly_once_in_order(aws_client: Any, workload: list) -> None:
    kinesis = aws_client("kinesis")
    stream = _stream(kinesis, "producer-clean", 4)
    placements = Producer(kinesis, stream, retry=FAST_RETRY).put_events(workload)

    assert [p.event_id for p in placements] == [str(e["metadata"]["event_id"]) for e in workload]
    read = _read_back(kinesis, stream)
    _assert_exactly_once_in_order(workload, read)
    where = {r[4]: (r[0], r[1], r[2]) for r in read}
    assert all(
        where[p.event_id] == (p.shard_id, p.sequence_number, p.sub_sequence_number)
        for p in placements
    ), "a placement does not say where the event landed"


def test_throttled_entries_are_retried_without_loss_or_reordering(
    aws_client: Any, workload: list
) -> None:
    kinesis = aws_client("kinesis")
    stream = _stream(kinesis, "producer-throttled", 4)
    throttle = Throttle(kinesis, fraction=0.3)
    Producer(kinesis, stream, retry=FAST_RETRY).put_events(workload)

    assert throttle.failed > 0
    _assert_exactly_once_in_order(workload, _read_back(kinesis, stream))


def test_unaggregated_and_throttled_still_exactly_once_in_order(aws_client: Any) -> None:
    kinesis = aws_client("kinesis")
    stream = _stream(kinesis, "producer-plain", 4)
    events = simulate(3_000, seed=5).events
    throttle = Throttle(kinesis, fraction=0.25)
    placements = Producer(kinesis, stream, aggregate=False, retry=FAST_RETRY).put_events(events)

    assert throttle.failed > 0
    assert all(p.sub_sequence_number is None for p in placements)
    assert max(len(r) for r in throttle.requests) <= 500
    _assert_exactly_once_in_order(events, _read_back(kinesis, stream))


def test_requests_stay_within_kinesis_limits(aws_client: Any) -> None:
    kinesis = aws_client("kinesis")
    stream = _stream(kinesis, "producer-limits", 6)
    big = "x" * 40_000
    events = [
        new_event(
            "UserActivityRecorded",
            {"user_id": f"user-{i}", "activity_type": "page_view", "details": {"html": big}},
            producer="test",
        )
        for i in range(200)
    ]
    throttle = Throttle(kinesis, fraction=0.0)
    Producer(kinesis, stream, retry=FAST_RETRY).put_events(events)

    sizes = [
        sum(len(r["Data"]) + len(r["PartitionKey"].encode()) for r in request)
        for request in throttle.requests
    ]
    records = [r for request in throttle.requests for r in request]
    assert max(sizes) <= MAX_BYTES_PER_REQUEST
    assert max(sizes) > 4 * 1024 * 1024, "requests should be packed close to the 5 MiB limit"
    assert max(len(r["Data"]) + len(r["PartitionKey"]) for r in records) <= 1024 * 1024
    assert len(_read_back(kinesis, stream)) == 200


def test_after_the_retry_budget_it_raises_with_every_event_that_did_not_land(
    aws_client: Any,
) -> None:
    kinesis = aws_client("kinesis")
    stream = _stream(kinesis, "producer-budget", 2)
    events = simulate(500, seed=3).events
    Throttle(kinesis, fraction=0.6, seed=11)
    retry = RetryPolicy(max_attempts=2, base_delay=0.001, max_delay=0.002)
    with pytest.raises(DeliveryError) as caught:
        Producer(kinesis, stream, aggregate=False, retry=retry).put_events(events)

    error = caught.value
    landed = {p.event_id for p in error.delivered}
    missing = {str(e["metadata"]["event_id"]) for e in error.undelivered}
    assert missing and landed
    assert landed | missing == {str(e["metadata"]["event_id"]) for e in events}
    assert not landed & missing
    assert {r[4] for r in _read_back(kinesis, stream)} == landed
