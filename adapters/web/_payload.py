"""The action's payload as a form: one input per leaf, read back with each leaf's type kept.

A reviewer edits values, not structure: numbers stay numbers, booleans are checkboxes, and
adding or removing keys is what the raw JSON editor is for. Inputs are numbered in the
order `leaves` walks the payload, so a field's name never has to encode a key (keys may
hold any character); the form carries the payload's hash, so a form drawn for another
version of the payload is refused instead of being read against the wrong leaves.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from adapters.web._present import label
from bot.core.domain import Action

FIELD_PREFIX = "pf_"
# Beyond this many leaves the form would be a wall of inputs (and a long POST): the raw
# JSON editor remains.
MAX_FORM_LEAVES = 200

LeafKind = Literal["integer", "number", "boolean", "text", "null", "empty"]
_INTEGER = re.compile(r"[+-]?\d+")

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class Leaf:
    """One editable value of the payload, at `path` (keys and list positions)."""

    index: int
    path: Path
    value: Any
    kind: LeafKind

    @property
    def name(self) -> str:
        return f"{FIELD_PREFIX}{self.index}"

    @property
    def label(self) -> str:
        """ "Invoice / Lines / 1 / Amount": positions count from 1 for people."""
        return " / ".join(
            str(part + 1) if isinstance(part, int) else label(part) for part in self.path
        )

    @property
    def dotted(self) -> str:
        return ".".join(str(part) for part in self.path)

    @property
    def multiline(self) -> bool:
        return self.kind == "text" and ("\n" in self.value or len(self.value) > 80)


def _kind(value: Any) -> LeafKind:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if value is None:
        return "null"
    if isinstance(value, Mapping | list):
        return "empty"
    return "text"


def leaves(payload: Mapping[str, Any]) -> list[Leaf]:
    """Every leaf of `payload` in document order; empty objects and lists are leaves too."""
    found: list[Leaf] = []

    def walk(path: Path, value: Any) -> None:
        if isinstance(value, Mapping) and value:
            for key, inner in value.items():
                walk((*path, str(key)), inner)
        elif isinstance(value, list) and value:
            for position, inner in enumerate(value):
                walk((*path, position), inner)
        else:
            found.append(Leaf(len(found), path, value, _kind(value)))

    for key, value in payload.items():
        walk((str(key),), value)
    return found


def editable(payload: Mapping[str, Any]) -> list[Leaf] | None:
    """The leaves to draw as a form, or None when there are too many for one."""
    found = leaves(payload)
    return found if len(found) <= MAX_FORM_LEAVES else None


class FieldErrors(ValueError):
    """Some inputs could not be read; `errors` maps input names to what is wrong."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        super().__init__("; ".join(errors.values()))
        self.errors = dict(errors)


def _read(leaf: Leaf, form: Mapping[str, str]) -> Any:
    """The typed value of `leaf`'s input; raises ValueError naming the field."""
    if leaf.kind == "boolean":
        return leaf.name in form
    if leaf.kind == "empty":
        return leaf.value
    raw = form.get(leaf.name)
    if raw is None:
        raise ValueError(f"{leaf.label} is missing from the form")
    text = raw.replace("\r\n", "\n")
    if leaf.kind == "text":
        return text
    if leaf.kind == "null":
        return None if text.strip() in ("", "null") else text
    number = text.strip()
    if leaf.kind == "integer" and _INTEGER.fullmatch(number):
        return int(number)
    try:
        parsed = float(number)
    except ValueError:
        parsed = math.nan
    if not math.isfinite(parsed):
        raise ValueError(f"{leaf.label} must be a number (it was {text.strip()[:40]!r})")
    return int(parsed) if leaf.kind == "integer" and parsed.is_integer() else parsed


def _replace(value: Any, path: Sequence[str | int], new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, list) and isinstance(head, int):
        copy = list(value)
        copy[head] = _replace(copy[head], rest, new)
        return copy
    changed = dict(value)
    changed[str(head)] = _replace(changed[str(head)], rest, new)
    return changed


def read_form(payload: Mapping[str, Any], form: Mapping[str, str]) -> dict[str, Any]:
    """`payload` with each leaf replaced by its input's value, types kept.

    Raises FieldErrors naming every input that is not what its leaf needs.
    """
    result: Any = dict(payload)
    errors: dict[str, str] = {}
    for leaf in leaves(payload):
        try:
            result = _replace(result, leaf.path, _read(leaf, form))
        except ValueError as exc:
            errors[leaf.name] = f"{exc}."
    if errors:
        raise FieldErrors(errors)
    return dict(result)


SHA_FIELD = "payload_sha256"
FORM_ERROR = "payload_form"


def read_posted(action: Action, form: Mapping[str, str]) -> dict[str, Any]:
    """The edited payload from a posted form drawn for `action`.

    Raises FieldErrors when the form was drawn for another version of the payload (another
    reviewer modified it meanwhile), when an input is not what its leaf needs, or when
    nothing was changed.
    """
    if form.get(SHA_FIELD) != action.sha256:
        raise FieldErrors(
            {
                FORM_ERROR: "The payload changed while you edited it (another reviewer "
                "modified it), so your edits were not applied. Check the new values below "
                "and edit again."
            }
        )
    edited = read_form(action.payload, form)
    if edited == dict(action.payload):
        raise FieldErrors(
            {FORM_ERROR: "Nothing was changed: edit a field, or choose Approve instead."}
        )
    return edited
