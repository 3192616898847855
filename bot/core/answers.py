"""Answers to a request's question: the one place a `response_schema` is checked and applied.

An agent may ask a reviewer something (`question`) and say what shape the answer must have
(`response_schema`, JSON Schema 2020-12). Chat and web forms hand in text; `read_answer`
turns it into the value the schema expects (a number, an object, a choice) and checks it,
so every channel accepts and refuses exactly the same answers.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from bot.core.errors import InvalidInput
from bot.core.jsondepth import MAX_DEPTH, value_depth

MAX_ANSWER_CHARS = 3000


def check_schema(schema: Mapping[str, Any]) -> None:
    """Raise InvalidInput("response_schema", ...) when `schema` is not a valid JSON Schema."""
    try:
        Draft202012Validator.check_schema(dict(schema))
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "the top level"
        raise InvalidInput(
            "response_schema", f"not a valid JSON Schema at {where}: {exc.message}"
        ) from None


def choices(schema: Mapping[str, Any] | None) -> list[str] | None:
    """The answers to pick from when the schema is a list of strings (`enum`), else None."""
    if not schema:
        return None
    values = schema.get("enum")
    if isinstance(values, list) and values and all(isinstance(v, str) for v in values):
        return list(values)
    return None


def wants_text(schema: Mapping[str, Any] | None) -> bool:
    """Whether a typed answer is taken as it stands (no schema, or a string schema)."""
    return not schema or schema.get("type") == "string" or choices(schema) is not None


def read_answer(schema: Mapping[str, Any] | None, text: str) -> Any:
    """The answer a reviewer typed, as the value the schema asks for.

    Without a schema (or with a string schema) the text is the answer; otherwise the text
    is read as JSON (a bare word for a string schema is fine). Raises InvalidInput("response",
    ...) naming what is wrong and where.
    """
    answer = text.strip()
    if not answer:
        raise InvalidInput("response", "an answer is required")
    if len(answer) > MAX_ANSWER_CHARS:
        raise InvalidInput("response", f"the answer is longer than {MAX_ANSWER_CHARS} characters")
    if wants_text(schema):
        value: Any = answer
    else:
        try:
            value = json.loads(answer)
        except json.JSONDecodeError as exc:
            raise InvalidInput(
                "response", f"the answer must be JSON for this question ({exc.msg} at {exc.pos})"
            ) from None
    check_answer(schema, value)
    return value


def check_answer(schema: Mapping[str, Any] | None, value: Any) -> None:
    """Raise InvalidInput("response", ...) unless `value` meets `schema` (any value without one)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        raise InvalidInput("response", "an answer is required")
    if value_depth(value) > MAX_DEPTH:
        raise InvalidInput("response", f"the answer nests deeper than {MAX_DEPTH} levels")
    if not schema:
        return
    error = next(iter(Draft202012Validator(dict(schema)).iter_errors(value)), None)
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path)
        place = f" at {where}" if where else ""
        raise InvalidInput(
            "response", f"the answer does not match the question{place}: {error.message}"
        )
