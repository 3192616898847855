"""Routing: pure policy for Signoff.

Frozen data in, frozen data out: a configured policy (``RoutingPolicy`` and ``TierSpec``)
is checked and compiled into a ``Policy``; ``decide`` turns a ``RoutingInput`` into a
``RoutingDecision``. No I/O, no logging, nothing else of Signoff imported.
"""

from routing._decide import (
    DecisionStatus,
    RoutingDecision,
    RoutingInput,
    confidence_lane,
    decide,
    predicted_to_escalate,
    rule_variables,
)
from routing._duration import Duration, format_duration, parse_duration
from routing._enums import RISK_ORDER, Lane, ReviewState, Risk, TimeoutAction
from routing._errors import PolicyError
from routing._explain import Formatter, check_template, render_template
from routing._model import DEFAULT_RULES, DEFAULT_TIERS, Notify, RoutingPolicy, Rule, TierSpec
from routing._policy import Policy, compile_policy, default_policy
from routing._rules import VARIABLES, CompiledRule, RuleError, compile_rule
from routing._sampling import sampled

__all__ = [
    "DEFAULT_RULES",
    "DEFAULT_TIERS",
    "RISK_ORDER",
    "VARIABLES",
    "CompiledRule",
    "DecisionStatus",
    "Duration",
    "Formatter",
    "Lane",
    "Notify",
    "Policy",
    "PolicyError",
    "ReviewState",
    "Risk",
    "RoutingDecision",
    "RoutingInput",
    "RoutingPolicy",
    "Rule",
    "RuleError",
    "TierSpec",
    "TimeoutAction",
    "check_template",
    "compile_policy",
    "compile_rule",
    "confidence_lane",
    "decide",
    "default_policy",
    "format_duration",
    "parse_duration",
    "predicted_to_escalate",
    "render_template",
    "rule_variables",
    "sampled",
]
