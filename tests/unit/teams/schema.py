"""The Adaptive Card 1.5 JSON schema every Teams card is checked against.

`adaptive-card-1.5.schema.json` is a verbatim copy of the project's shared reference
(`shared/reference/adaptive-card-1.5.schema.json`), kept here so a fresh clone can test.

The generic schema does not know Teams' own `msteams` key (its card-level extension), and
refuses it as an unknown property. It is set aside for that check and validated on its own
against the shape Teams documents: `width` ("Full" for a full-width card) and `entities`,
each a mention `{"type": "mention", "text": "<at>…</at>", "mentioned": {"id", "name"}}`
whose text appears in one of the card's TextBlocks (where Teams draws it).
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


MSTEAMS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "width": {"enum": ["Full"]},
        "entities": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["type", "text", "mentioned"],
                "properties": {
                    "type": {"const": "mention"},
                    "text": {"type": "string", "pattern": "^<at>[^<>]+</at>$"},
                    "mentioned": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["id", "name"],
                        "properties": {
                            "id": {"type": "string", "minLength": 1},
                            "name": {"type": "string", "minLength": 1},
                        },
                    },
                },
            },
        },
    },
}
"""Teams' documented `msteams` card extension (full width, mentions in the card)."""


def assert_msteams(card: Any) -> None:
    """Fail unless the card's `msteams` part (if any) has Teams' documented shape."""
    part = card.get("msteams")
    if part is None:
        return
    errors = list(jsonschema.Draft7Validator(MSTEAMS_SCHEMA).iter_errors(part))
    assert not errors, "\n".join(f"msteams{list(e.absolute_path)}: {e.message}" for e in errors)
    blocks = [n["text"] for n in card_nodes(card["body"]) if n.get("type") == "TextBlock"]
    for entity in part.get("entities", []):
        assert any(entity["text"] in text for text in blocks), (
            f"mention {entity['text']} is in no TextBlock of the card"
        )


def card_nodes(node: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        found.append(node)
        for value in node.values():
            found += card_nodes(value)
    elif isinstance(node, list):
        for value in node:
            found += card_nodes(value)
    return found


def assert_adaptive_card(card: Any) -> None:
    """Fail with every schema error found, or if `card` is not a top-level 1.5 card.

    The `msteams` key is checked apart (`assert_msteams`), the rest against the 1.5 schema.
    """
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.5"
    assert len(json.dumps(card, ensure_ascii=False).encode()) < MAX_CARD_BYTES
    assert_msteams(card)
    card = {key: value for key, value in card.items() if key != "msteams"}
    shape = json.dumps(_shape(card), sort_keys=True)
    if shape in _valid_shapes:
        return
    errors = sorted(validator().iter_errors(card), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message[:300]}" for e in errors)
    _valid_shapes.add(shape)
