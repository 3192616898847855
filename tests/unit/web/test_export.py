"""Audit export rows: the same columns and encoding as `signoff audit export`."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

import pytest

from adapters.web.export import AUDIT_CSV_FIELDS, audit_csv, audit_export, audit_jsonl
from bot.core.domain import GENESIS_HASH, AuditEvent, AuditRecord, audit_hash

AT = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def records() -> list[AuditRecord]:
    first = AuditEvent("submitted", AT, "req_1", "agent:bot", "api", None, "high", {"kind": "x"})
    second = AuditEvent("voted", AT, "req_1", "web:alice", "web", 'ok, "fine"', "high", {"b": 1})
    h1 = audit_hash(GENESIS_HASH, 1, first)
    return [
        AuditRecord(1, first, GENESIS_HASH, h1),
        AuditRecord(2, second, h1, audit_hash(h1, 2, second)),
    ]


def test_jsonl_is_one_sorted_object_per_line() -> None:
    lines = audit_jsonl(records()).splitlines()
    assert [json.loads(line) for line in lines] == [r.to_json() for r in records()]
    assert lines[0] == json.dumps(records()[0].to_json(), sort_keys=True)


def test_csv_has_the_cli_columns_and_json_data() -> None:
    rows = list(csv.DictReader(io.StringIO(audit_csv(records()))))
    assert tuple(rows[0]) == AUDIT_CSV_FIELDS
    assert rows[1]["reason"] == 'ok, "fine"' and rows[1]["actor"] == "web:alice"
    assert json.loads(rows[0]["data"]) == {"kind": "x"}
    assert rows[0]["reason"] == "" and rows[0]["at"] == "2026-01-05T09:00:00Z"


def test_export_dispatches_on_format() -> None:
    assert audit_export(records(), "csv") == audit_csv(records())
    assert audit_export(records(), "jsonl") == audit_jsonl(records())
    with pytest.raises(ValueError, match="unknown export format"):
        audit_export(records(), "xml")


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_csv_cells_that_would_run_as_formulas_are_text(start: str) -> None:
    formula = f"{start}cmd|' /C calc'!A0"
    event = AuditEvent("voted", AT, "req_1", f"{start}web:mallory", "web", formula, "high", {})
    record = AuditRecord(1, event, GENESIS_HASH, audit_hash(GENESIS_HASH, 1, event))
    row = next(csv.DictReader(io.StringIO(audit_csv([record]))))
    assert row["reason"] == "'" + formula
    assert row["actor"] == f"'{start}web:mallory"
    assert row["data"] == "{}" and row["event"] == "voted"
    assert json.loads(audit_jsonl([record]))["reason"] == formula
