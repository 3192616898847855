"""Shared builders for the routing tests."""

from __future__ import annotations

from typing import Any

from routing import (
    DEFAULT_TIERS,
    Policy,
    RoutingInput,
    RoutingPolicy,
    Rule,
    compile_policy,
)


def make_input(**overrides: Any) -> RoutingInput:
    """A clean invoice at 0.9 confidence: no default rule fires for it."""
    fields: dict[str, Any] = {
        "request_id": "req_1",
        "agent_id": "invoice-bot",
        "action_kind": "invoice",
        "action_summary": "Send INV-123 to ACME",
        "confidence": 0.9,
    }
    fields.update(overrides)
    return RoutingInput(**fields)


def policy_with(*rules: Rule, **routing: Any) -> Policy:
    """The default tiers under a routing policy with exactly these rules."""
    return compile_policy(RoutingPolicy(rules=rules, **routing), DEFAULT_TIERS)
