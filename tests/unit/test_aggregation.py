"""KPL aggregation: compatible with aws-kinesis-agg both ways, and checksum verified."""

from __future__ import annotations

import base64
import os

import pytest
from aws_kinesis_agg.aggregator import RecordAggregator
from aws_kinesis_agg.deaggregator import deaggregate_records

from pipelines.contract.codec import encode_event
from pipelines.contract.events import new_event
from pipelines.errors import CorruptRecordError
from pipelines.stream.aggregation import MAX_AGGREGATE_BYTES, Aggregator, deaggregate
from pipelines.stream.records import decode_lambda_record


def _lambda_record(data: bytes, partition_key: str = "pk", sequence: str = "49590") -> dict:
    return {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": partition_key,
            "sequenceNumber": sequence,
            "data": base64.b64encode(data).decode(),
            "approximateArrivalTimestamp": 1_700_000_000.123,
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": f"shardId-000000000003:{sequence}",
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": "arn:aws:iam::123456789012:role/consumer",
        "awsRegion": "us-east-1",
        "eventSourceARN": "arn:aws:kinesis:us-east-1:123456789012:stream/events",
    }


def _user_records(n: int) -> list[tuple[str, bytes]]:
    return [(f"user-{i % 7}-ü", os.urandom(i % 50 + 1)) for i in range(n)]


def test_our_aggregates_are_read_by_the_reference_deaggregator() -> None:
    records = _user_records(300)
    aggregator = Aggregator()
    for key, data in records:
        assert aggregator.add(key, data)
    theirs = deaggregate_records([_lambda_record(aggregator.seal())])
    assert [
        (r["kinesis"]["partitionKey"], base64.b64decode(r["kinesis"]["data"])) for r in theirs
    ] == records
    assert [r["kinesis"]["subSequenceNumber"] for r in theirs] == list(range(300))


def test_reference_aggregates_are_read_by_ours() -> None:
    records = _user_records(300)
    reference = RecordAggregator()
    for key, data in records:
        assert reference.add_user_record(key, data) is None
    _, _, blob = reference.clear_and_get().get_contents()
    ours = deaggregate(blob, "")
    assert [(r.partition_key, r.data) for r in ours] == records
    assert [r.sub_sequence_number for r in ours] == list(range(300))


def test_events_of_an_aggregate_keep_their_stream_coordinates() -> None:
    events = [
        new_event(
            "UserActivityRecorded", {"user_id": f"u{i}", "activity_type": "login"}, producer="t"
        )
        for i in range(5)
    ]
    aggregator = Aggregator()
    for event in events:
        assert aggregator.add(event["user_id"], encode_event(event))
    decoded = decode_lambda_record(_lambda_record(aggregator.seal(), sequence="7"))
    assert [d.event.event_id for d in decoded.events] == [e["metadata"]["event_id"] for e in events]
    assert [d.sub_sequence_number for d in decoded.events] == list(range(5))
    records = [decoded.user_record(d) for d in decoded.events]
    assert {r.sequence_number for r in records} == {"7"}
    assert {r.shard_id for r in records} == {"shardId-000000000003"}
    assert all(r.aggregated for r in records)
    assert decoded.keys() == {f"u{i}" for i in range(5)}


def test_size_accounting_matches_the_sealed_bytes_and_the_limit() -> None:
    aggregator = Aggregator()
    payload = os.urandom(200)
    n = 0
    while aggregator.add(f"key-{n % 1000}", payload):
        n += 1
        if n % 997 == 0:
            assert aggregator.size == len(aggregator.seal())
    sealed = aggregator.seal()
    assert len(sealed) == aggregator.size
    assert len(sealed) <= MAX_AGGREGATE_BYTES
    assert len(sealed) > MAX_AGGREGATE_BYTES - 300  # full, not merely safe
    assert len(deaggregate(sealed, "")) == n


def test_a_record_too_big_for_any_aggregate_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot fit"):
        Aggregator(max_bytes=1000).add("k", b"x" * 2000)


def test_a_plain_record_is_one_user_record() -> None:
    [(record, _)] = decode_lambda_record(
        _lambda_record(b"\xc3\x01plain", partition_key="u1")
    ).poison
    assert (record.partition_key, record.data, record.sub_sequence_number) == (
        "u1",
        b"\xc3\x01plain",
        0,
    )
    assert not record.aggregated


def test_an_aggregate_with_a_bad_checksum_is_corrupt_not_passed_through() -> None:
    aggregator = Aggregator()
    aggregator.add("k", b"payload")
    sealed = bytearray(aggregator.seal())
    sealed[-1] ^= 0xFF
    with pytest.raises(CorruptRecordError, match="checksum") as caught:
        deaggregate(bytes(sealed), "k")
    assert caught.value.raw == bytes(sealed)


def test_an_undecodable_lambda_record_becomes_one_poison_entry_with_its_bytes() -> None:
    record = _lambda_record(b"")
    record["kinesis"]["data"] = "!!not base64!!"
    decoded = decode_lambda_record(record)
    assert decoded.events == []
    [(user_record, error)] = decoded.poison
    assert error.raw == b"!!not base64!!"
    assert user_record.data == b"!!not base64!!"
    assert user_record.sequence_number == "49590"


def test_base64_with_characters_outside_the_alphabet_is_poison_with_the_bytes_as_sent() -> None:
    record = _lambda_record(b"")
    record["kinesis"]["data"] = "w4MB*AAAAAAA"  # a lenient decoder would drop the '*'
    [(user_record, error)] = decode_lambda_record(record).poison
    assert error.code == "corrupt_record"
    assert user_record.data == b"w4MB*AAAAAAA"
