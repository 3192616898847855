"""Rule explanations: sentences over the request with `{placeholder}`s, checked at load time.

A placeholder names a variable a rule sees (`{amount}`, `{currency}`) or a path into one
(`{action.kind}`, `{labels.customer_tier}`, `{action.payload.invoice}`). Rendering takes
the caller's formatter, so that money and percentages read the reader's way while routing
itself stays free of locales.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from routing._variables import VARIABLES

_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_PATH = re.compile(r"[a-z_][a-z0-9_]*(\.[A-Za-z0-9_-]+)*")

Formatter = Callable[[str, Any], str]
"""(placeholder path, value) -> text; the default is `str`."""


def check_template(template: str) -> None:
    """Raise ValueError naming the first placeholder that is malformed or unknown."""
    for match in _PLACEHOLDER.finditer(template):
        path = match.group(1)
        if _PATH.fullmatch(path) is None:
            raise ValueError(
                f"placeholder {{{path}}} is not a variable name or a dotted path "
                "(e.g. {amount} or {action.payload.invoice})"
            )
        root = path.split(".", 1)[0]
        if root not in VARIABLES:
            known = ", ".join(sorted(VARIABLES))
            raise ValueError(f"placeholder {{{path}}} names no request variable; known: {known}")
    stray = _PLACEHOLDER.sub("", template)
    if "{" in stray or "}" in stray:
        raise ValueError("unbalanced { or } in explain (placeholders look like {amount})")


def render_template(
    template: str, variables: Mapping[str, Any], formatter: Formatter | None = None
) -> str:
    """`template` with each placeholder replaced; a path the request lacks reads as "—"."""
    fmt = formatter or _plain

    def replace(match: re.Match[str]) -> str:
        path = match.group(1)
        value: Any = variables
        for part in path.split("."):
            if not isinstance(value, Mapping) or part not in value:
                return "—"
            value = value[part]
        return fmt(path, value)

    return _PLACEHOLDER.sub(replace, template)


def _plain(path: str, value: Any) -> str:
    return str(value)
