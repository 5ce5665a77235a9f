"""Partial batch responses read the way Lambda reads them."""

from __future__ import annotations

from typing import Any

import pytest

from pipelines_local.runtime.responses import read_batch_response

BATCH = ["101", "102", "103"]


@pytest.mark.parametrize(
    "response",
    [None, {}, {"batchItemFailures": []}, {"batchItemFailures": None}, "ok", 3],
)
def test_null_or_empty_responses_mean_the_whole_batch_succeeded(response: Any) -> None:
    assert read_batch_response(response, BATCH).succeeded


def test_named_records_failed() -> None:
    outcome = read_batch_response(
        {"batchItemFailures": [{"itemIdentifier": "103"}, {"itemIdentifier": "102"}]}, BATCH
    )
    assert outcome.failed_ids == {"102", "103"}
    assert not outcome.whole_batch_failed


@pytest.mark.parametrize(
    "failures",
    [
        [{"itemIdentifier": ""}],
        [{"itemIdentifier": None}],
        [{"itemidentifier": "101"}],  # a bad key name
        [{"itemIdentifier": "999"}],  # no such record in the batch
        [{"itemIdentifier": 101}],
        ["101"],
        {"itemIdentifier": "101"},
    ],
)
def test_malformed_identifiers_fail_the_whole_batch(failures: Any) -> None:
    outcome = read_batch_response({"batchItemFailures": failures}, BATCH)
    assert outcome.whole_batch_failed
    assert outcome.reason
