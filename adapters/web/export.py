"""Audit rows as `signoff audit export` writes them, shared by the CLI and the web inbox."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from typing import Any

from bot.core.domain import AuditRecord
from bot.core.spreadsheet import safe_row

AUDIT_CSV_FIELDS = (
    "seq",
    "at",
    "event",
    "request_id",
    "actor",
    "channel",
    "reason",
    "risk",
    "data",
    "hash",
)

MEDIA_TYPES = {"jsonl": "application/x-ndjson", "csv": "text/csv; charset=utf-8"}


def audit_rows(records: Iterable[AuditRecord]) -> list[dict[str, Any]]:
    return [record.to_json() for record in records]


def audit_jsonl(records: Iterable[AuditRecord]) -> str:
    """One JSON object per line, keys sorted: exactly what `signoff audit export` prints."""
    return "".join(json.dumps(row, sort_keys=True) + "\n" for row in audit_rows(records))


def audit_csv(records: Iterable[AuditRecord]) -> str:
    """A header row and one row per event; `data` is its JSON text (keys sorted); text
    cells a spreadsheet would run as a formula start with `'` (bot.spreadsheet)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=AUDIT_CSV_FIELDS, extrasaction="ignore")
    writer.writeheader()
    for row in audit_rows(records):
        writer.writerow(safe_row({**row, "data": json.dumps(row["data"], sort_keys=True)}))
    return out.getvalue()


def audit_export(records: Iterable[AuditRecord], fmt: str) -> str:
    """Raises ValueError for a format other than `jsonl` or `csv`."""
    if fmt == "jsonl":
        return audit_jsonl(records)
    if fmt == "csv":
        return audit_csv(records)
    raise ValueError(f"unknown export format {fmt!r} (jsonl or csv)")
