"""The names a rule's CEL expression (and an explanation's placeholders) may use."""

from __future__ import annotations

VARIABLES: frozenset[str] = frozenset(
    {
        "action",
        "confidence",
        "amount",
        "currency",
        "reversible",
        "domain",
        "sentiment",
        "agent_id",
        "labels",
        "context",
        "predicted_escalation",
    }
)
