"""JSON nesting depth: every input Signoff stores is at most MAX_DEPTH levels deep.

Deeply nested JSON is accepted by parsers up to the interpreter's recursion limit and then
breaks whatever walks it later (validation, serialisation, templates) with a RecursionError,
so a value deep enough could be stored and then make every read of it fail. The depth of a
JSON text is measured without parsing it, so that even a text too deep to parse is refused
with a clear error instead of a crash.
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_DEPTH = 32

# A JSON string literal (escapes included): brackets inside strings do not nest.
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = re.compile(rb"[\[\]{}]")


class TooDeep(ValueError):
    """A JSON input nests deeper than MAX_DEPTH."""

    def __init__(self, depth: int, limit: int = MAX_DEPTH) -> None:
        super().__init__(f"JSON nesting deeper than the limit of {limit} levels")
        self.depth = depth
        self.limit = limit


def text_depth(text: str | bytes, stop_after: int = MAX_DEPTH) -> int:
    """How deep the arrays and objects of a JSON text nest (0 for a scalar).

    Counting stops a level past `stop_after`: the caller only needs to know it is too deep.
    Unbalanced or invalid texts get a number too; the parser reports what is wrong with them.
    """
    raw = text.encode("utf-8", errors="replace") if isinstance(text, str) else text
    depth = deepest = 0
    for match in _BRACKETS.finditer(_STRING.sub(b"", raw)):
        if match.group() in (b"[", b"{"):
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > stop_after:
                    return deepest
        else:
            depth = max(depth - 1, 0)
    return deepest


def value_depth(value: Any, stop_after: int = MAX_DEPTH) -> int:
    """How deep the dicts and lists of a parsed value nest, walked without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        deepest = max(deepest, level)
        if deepest > stop_after:
            return deepest
        stack.extend((child, level + 1) for child in children)
    return deepest


def check_value(value: Any, limit: int = MAX_DEPTH) -> None:
    """Raise TooDeep when `value` nests deeper than `limit`."""
    depth = value_depth(value, limit)
    if depth > limit:
        raise TooDeep(depth, limit)


def loads(text: str | bytes, limit: int = MAX_DEPTH) -> Any:
    """`json.loads`, refusing (TooDeep) a text nested deeper than `limit` before parsing it.

    Raises TooDeep, json.JSONDecodeError.
    """
    depth = text_depth(text, limit)
    if depth > limit:
        raise TooDeep(depth, limit)
    return json.loads(text)
