"""Kinesis throughput on the embedded emulator as one shard grows, with and without the index.

Run: ``.venv/bin/python tests/benchmarks/bench_emulator_kinesis.py [--records 100000]``

For each variant it starts an emulator, puts ``--records`` records into a one-shard stream with
``PutRecords`` (500 per call) and reads them back with ``GetRecords`` (``--read-limit`` per call),
printing records per second for each slice: for puts, as the shard fills up; for reads, as the
iterator advances through the full shard. "moto as released" leaves out the
shard index patch (and retention trimming, which builds on it).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import boto3

from pipelines_local.emulator import start_emulator

VARIANTS = {
    "patched": (),
    "moto as released": ("kinesis_shard_index",),
}


def _client(endpoint_url: str) -> Any:
    return boto3.client(
        "kinesis",
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


def _put(kinesis: Any, records: int, slice_size: int) -> list[float]:
    rates = []
    payload = b"x" * 200
    put = 0
    while put < records:
        started = time.perf_counter()
        target = min(put + slice_size, records)
        while put < target:
            batch = min(500, target - put)
            kinesis.put_records(
                StreamName="bench",
                Records=[{"Data": payload, "PartitionKey": f"k{put + i}"} for i in range(batch)],
            )
            put += batch
        rates.append(slice_size / (time.perf_counter() - started))
    return rates


def _get(kinesis: Any, records: int, slice_size: int, limit: int) -> list[float]:
    shard_id = kinesis.list_shards(StreamName="bench")["Shards"][0]["ShardId"]
    iterator = kinesis.get_shard_iterator(
        StreamName="bench", ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    rates = []
    read = 0
    while read < records:
        started = time.perf_counter()
        target = min(read + slice_size, records)
        while read < target:
            response = kinesis.get_records(ShardIterator=iterator, Limit=limit)
            iterator = response["NextShardIterator"]
            read += len(response["Records"])
        rates.append(slice_size / (time.perf_counter() - started))
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--slice", type=int, default=10_000, help="records per reported figure")
    parser.add_argument("--read-limit", type=int, default=1_000)
    parser.add_argument("--variant", choices=sorted(VARIANTS), action="append")
    args = parser.parse_args()

    for name in args.variant or list(VARIANTS):
        with start_emulator(disabled_patches=VARIANTS[name]) as emulator:
            kinesis = _client(emulator.endpoint_url)
            kinesis.create_stream(StreamName="bench", ShardCount=1)
            puts = _put(kinesis, args.records, args.slice)
            gets = _get(kinesis, args.records, args.slice, args.read_limit)
        limit = args.read_limit
        print(f"\n{name}: records/s per {args.slice:,} records (GetRecords Limit={limit})")
        print(f"{'records':>12} {'PutRecords':>11} {'GetRecords':>11}")
        for index, (put_rate, get_rate) in enumerate(zip(puts, gets, strict=True)):
            print(f"{(index + 1) * args.slice:>12,} {put_rate:>11,.0f} {get_rate:>11,.0f}")


if __name__ == "__main__":
    main()
