"""Rules compiled once with CEL, and evaluated without ever raising."""

from __future__ import annotations

import re
import reprlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import cel

from routing._model import Rule
from routing._variables import VARIABLES as VARIABLES

"""The names a rule's ``when`` may use (contract section 4)."""

# cel reports parse errors as "... ERROR: <input>:LINE:COLUMN: message" followed by
# "| source" and "| ...^" lines; several errors may follow, the first is the useful one.
_PARSE_ERROR = re.compile(r"ERROR: <input>:(\d+):(\d+): ([^\n]*)((?:\n\|[^\n]*)*)")
# Program.variables() also lists names bound by comprehension macros (the x in
# `list.exists(x, x > 1)`), which are not free variables and must not be rejected.
_MACRO_BINDING = re.compile(
    r"\.\s*(?:all|exists|exists_one|map|filter)\s*\(\s*([A-Za-z_][A-Za-z0-9_]*)\s*,"
)


@dataclass(frozen=True)
class RuleError:
    """A rule that could not give a yes or no for one request, and why."""

    rule: str
    message: str


@dataclass(frozen=True)
class CompiledRule:
    """A rule with its CEL program, compiled once when the policy is built."""

    rule: Rule
    program: cel.Program

    def evaluate(self, variables: Mapping[str, Any] | cel.Context) -> bool | RuleError:
        """The rule's answer for these variables, or why it has none. Never raises.

        Several rules over the same variables share one `bind(variables)`: converting them
        to CEL values costs more than evaluating a rule."""
        try:
            result = self.program.execute(
                variables if isinstance(variables, cel.Context) else dict(variables)
            )
        # cel reports evaluation failures as assorted Python exceptions (KeyError for a
        # missing map key, TypeError for mixed-type arithmetic, ZeroDivisionError,
        # RuntimeError for an unknown function...). Each must fail safe, never crash routing.
        except Exception as exc:
            return RuleError(self.rule.name, f"{type(exc).__name__}: {exc}")
        if not isinstance(result, bool):
            return RuleError(
                self.rule.name,
                f"returned {type(result).__name__} {reprlib.repr(result)}, not a bool",
            )
        return result


def bind(variables: Mapping[str, Any]) -> Mapping[str, Any] | cel.Context:
    """`variables` converted once for several `evaluate` calls; unchanged when cel refuses
    to convert them, so that each rule then reports the failure as its own RuleError."""
    try:
        return cel.Context(dict(variables))
    except Exception:
        return variables


def compile_rule(rule: Rule) -> CompiledRule | str:
    """Compile one rule; on failure return the problem, phrased for a config error."""
    try:
        program = cel.compile(rule.when)
    # cel raises ValueError for parse errors; anything else it raises is equally fatal
    # for this rule, and must surface as a config error rather than a crash.
    except Exception as exc:
        return f"rule {rule.name!r} does not compile: {_describe(str(exc))}"
    bound = set(_MACRO_BINDING.findall(rule.when))
    unknown = sorted(set(program.variables()) - VARIABLES - bound)
    if unknown:
        names = ", ".join(repr(name) for name in unknown)
        known = ", ".join(sorted(VARIABLES))
        return f"rule {rule.name!r} uses unknown variable(s) {names}; known: {known}"
    return CompiledRule(rule, program)


def _describe(message: str) -> str:
    match = _PARSE_ERROR.search(message)
    if match is None:
        return message
    line, column, what, excerpt = match.groups()
    return f"line {line}, column {column}: {what}{excerpt}"
