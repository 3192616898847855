"""CSV cells that a spreadsheet opens as text, never as a formula (OWASP's CSV injection).

A cell starting with `=`, `+`, `-`, `@`, a tab or a carriage return is read as a formula
(or a DDE call) by Excel, LibreOffice and Google Sheets; a leading `'` makes it text.
Only text is guarded: numbers (a negative amount or sentiment) are written as numbers,
which a spreadsheet reads as numbers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """`value` with a leading `'` when it is text a spreadsheet would run as a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def safe_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """Every cell of a CSV row passed through `safe_cell`."""
    return {key: safe_cell(value) for key, value in row.items()}
