"""``pipeline events encode|decode`` as a person debugging a stream uses them."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from typing import Any

import pytest


def pipeline(*args: str, stdin: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipelines_local.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


TRANSACTIONS = "\n".join(
    json.dumps(t)
    for t in [
        {
            "transaction_id": "t-1",
            "user_id": "u-1",
            "amount": "10500.25",
            "currency": "EUR",
            "merchant": "Café Ünïcode",
            "category": "travel",
            "status": "completed",
            "metadata": {"occurred_at": "2026-11-01T10:00:00Z", "correlation_id": "c-1"},
        },
        {
            "transaction_id": "t-2",
            "user_id": "u-2",
            "amount": 3.5,
            "currency": "USD",
            "merchant": "Shop",
            "category": "grocery",
            "status": "pending",
        },
    ]
)


@pytest.mark.parametrize("aggregate", [False, True])
def test_encode_then_decode_gives_the_events_back(aggregate: bool) -> None:
    flags = ["--aggregate"] if aggregate else []
    encoded = pipeline(
        "events", "encode", "--type", "TransactionRecorded", *flags, stdin=TRANSACTIONS
    )
    assert encoded.returncode == 0, encoded.stderr
    assert len(encoded.stdout.splitlines()) == (1 if aggregate else 2)

    decoded = pipeline("events", "decode", stdin=encoded.stdout)
    assert decoded.returncode == 0, decoded.stderr
    out = [json.loads(line) for line in decoded.stdout.splitlines()]
    assert [o["event_type"] for o in out] == ["TransactionRecorded"] * 2
    assert {o["fingerprint"] for o in out} == {"c83d64786de47254"}
    first, second = (o["event"] for o in out)
    assert first["amount"] == "10500.2500" and second["amount"] == "3.5000"
    assert first["merchant"] == "Café Ünïcode"
    assert first["metadata"]["occurred_at"] == "2026-11-01T10:00:00.000Z"
    assert first["metadata"]["aggregate_id"] == "u-1"
    assert first["metadata"]["correlation_id"] == "c-1"
    if aggregate:
        assert [o["sub_sequence_number"] for o in out] == [0, 1]


@pytest.mark.parametrize(
    ("stdin", "message"),
    [
        ("{not json", "line 1: not JSON"),
        ('{"user_id": "u1", "email": "a@b.c"}', "line 1: UserRegistered.name is required"),
        ('{"user_id": "u1", "email": "a@b.c", "name": "A", "age": 3}', "unknown field(s): age"),
        ('{"user_id": "u1", "email": 5, "name": "A"}', "email must be of Avro type string"),
        (
            '{"user_id": "u1", "email": "a", "name": "A", "metadata": {"occurred_at": "soon"}}',
            "occurred_at is not an ISO 8601 timestamp",
        ),
    ],
)
def test_encode_rejects_bad_input_clearly_and_writes_nothing(stdin: str, message: str) -> None:
    result = pipeline("events", "encode", "--type", "UserRegistered", stdin=stdin)
    assert result.returncode == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_encode_rejects_an_unknown_type() -> None:
    result = pipeline("events", "encode", "--type", "UserDeleted", stdin="{}")
    assert result.returncode == 2
    assert "invalid choice" in result.stderr


def test_decode_reports_each_bad_line_and_still_prints_the_good_ones() -> None:
    good = pipeline(
        "events", "encode", "--type", "TransactionRecorded", stdin=TRANSACTIONS
    ).stdout.splitlines()[0]
    unknown = base64.b64encode(b"\xc3\x01" + b"\x00" * 8 + b"\x02").decode()
    truncated = base64.b64encode(base64.b64decode(good)[:15]).decode()
    stdin = "\n".join(
        [good, "%%%", unknown, truncated, base64.b64encode(b'{"json": "instead"}').decode()]
    )

    result = pipeline("events", "decode", stdin=stdin)
    assert result.returncode == 1
    assert len(result.stdout.splitlines()) == 1
    errors = result.stderr.splitlines()
    assert errors[0].startswith("line 2: not base64")
    assert errors[1].startswith("line 3: no shipped schema has fingerprint 0000000000000000")
    assert errors[2].startswith("line 4: TransactionRecorded body is truncated")
    assert errors[3].startswith("line 5: record does not start with the single-object marker")
    assert "Traceback" not in result.stderr


def test_encode_refuses_a_metadata_event_type_that_contradicts_type() -> None:
    line = json.dumps(
        {
            "user_id": "u-1",
            "email": "a@example.com",
            "name": "A",
            "metadata": {"event_type": "UserProfileUpdated"},
        }
    )
    result = pipeline("events", "encode", "--type", "UserRegistered", stdin=line)
    assert result.returncode == 1
    assert result.stdout == ""
    assert (
        "line 1: metadata.event_type is 'UserProfileUpdated' but --type is 'UserRegistered'"
        in result.stderr
    )


def test_encode_warns_when_the_schema_has_unreleased_changes(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import argparse
    import io
    import shutil

    from pipelines.contract.schemas import schemas_dir
    from pipelines_local.commands import events as command

    edited = tmp_path / "schemas"
    shutil.copytree(schemas_dir(), edited)
    path = edited / "TransactionRecorded.avsc"
    schema = json.loads(path.read_text())
    schema["fields"].append({"name": "note", "type": ["null", "string"], "default": None})
    path.write_text(json.dumps(schema, indent=2))
    monkeypatch.setattr(command, "schemas_dir", lambda: edited)
    args = argparse.Namespace(event_type="TransactionRecorded", aggregate=False, producer="cli")
    out, err = io.StringIO(), io.StringIO()

    code = command.run_encode(args, io.StringIO(TRANSACTIONS), out, err)

    assert code == 0 and len(out.getvalue().splitlines()) == 2
    warning = err.getvalue()
    assert "warning: schemas/TransactionRecorded.avsc has changed since its last release" in warning
    assert "`pipeline schemas release`" in warning
    # Released schemas: no warning.
    monkeypatch.setattr(command, "schemas_dir", schemas_dir)
    err = io.StringIO()
    assert command.run_encode(args, io.StringIO(TRANSACTIONS), io.StringIO(), err) == 0
    assert err.getvalue() == ""
