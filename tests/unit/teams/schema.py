"""The Adaptive Card 1.5 JSON schema every Teams card is checked against.

`adaptive-card-1.5.schema.json` is a verbatim copy of the project's shared reference
(`shared/reference/adaptive-card-1.5.schema.json`), kept here so a fresh clone can test.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import jsonschema

SCHEMA_PATH = Path(__file__).with_name("adaptive-card-1.5.schema.json")
MAX_CARD_BYTES = 28_000
"""Teams refuses bot messages over about 28 KB; a card must leave room for its envelope."""


@functools.cache
def validator() -> jsonschema.Draft6Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.Draft6Validator.check_schema(schema)
    return jsonschema.Draft6Validator(schema)


# Keys whose values the schema only requires to be strings: two cards that differ only there
# are equally valid, so a shape is validated once (validation costs ~0.1 s a card).
_FREE_TEXT = frozenset(
    {"text", "value", "title", "fallbackText", "placeholder", "label", "errorMessage", "url"}
)
_valid_shapes: set[str] = set()


def _shape(node: Any, key: str = "") -> Any:
    if isinstance(node, dict):
        return {k: _shape(v, k) for k, v in node.items()}
    if isinstance(node, list):
        return [_shape(v) for v in node]
    if isinstance(node, str) and key in _FREE_TEXT:
        return ""
    return node


def assert_adaptive_card(card: Any) -> None:
    """Fail with every schema error found, or if `card` is not a top-level 1.5 card."""
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.5"
    assert len(json.dumps(card, ensure_ascii=False).encode()) < MAX_CARD_BYTES
    shape = json.dumps(_shape(card), sort_keys=True)
    if shape in _valid_shapes:
        return
    errors = sorted(validator().iter_errors(card), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message[:300]}" for e in errors)
    _valid_shapes.add(shape)
