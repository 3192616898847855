"""Training examples from the decision history: the feedback loop of the seed.

Every request a person settled (approve, reject, modify, confirm, reverse) and every
request whose outcome the agent reported becomes one example: what routing saw, what the
agent proposed, what the people said, and the label a model would learn. Items ended by
the on_timeout policy carry no human judgement and are left out unless an outcome was
reported. Pure: requests in, rows and text out.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from typing import Any

from bot.core.domain import POLICY_ACTOR, ApprovalRequest, isoformat
from bot.core.spreadsheet import safe_row
from bot.oversight.figures import deciding_vote, needed_a_human, overridden

FORMATS = ("jsonl", "csv")

# Reasons that are not rules: the confidence branch and the stop button.
_NOT_RULES = frozenset({"low_confidence", "agent_stopped"})

CSV_FIELDS = (
    "id",
    "created_at",
    "agent_id",
    "thread_id",
    "confidence",
    "action_kind",
    "amount",
    "currency",
    "reversible",
    "domain",
    "sentiment",
    "labels",
    "lane",
    "risk",
    "rules",
    "action",
    "recommendation",
    "status",
    "verdict",
    "reviewer",
    "rationale",
    "decided_at",
    "modified_action",
    "votes",
    "override",
    "needed_human",
    "outcome_correct",
    "outcome_note",
)


def has_ground_truth(request: ApprovalRequest) -> bool:
    """Whether a person settled the item or the agent reported how it turned out."""
    return deciding_vote(request) is not None or request.outcome is not None


def example(request: ApprovalRequest) -> dict[str, Any]:
    """One training example as a JSON-ready mapping (the JSONL line)."""
    settled = deciding_vote(request)
    context = dict(request.context)
    return {
        "id": request.id,
        "created_at": isoformat(request.created_at),
        "agent_id": request.agent_id,
        "thread_id": request.thread_id,
        "features": {
            "confidence": request.confidence,
            "action_kind": request.action.kind,
            "amount": request.amount,
            "currency": request.currency,
            "reversible": request.reversible,
            "domain": request.domain,
            "sentiment": request.sentiment,
            "labels": dict(request.labels),
        },
        "routing": {
            "lane": request.lane.value,
            "risk": request.risk.value,
            "rules": [r for r in request.reasons if r not in _NOT_RULES],
            "reasons": list(request.reasons),
            "approvals_required": request.approvals_required,
        },
        "proposal": {
            "action": request.action.to_json(),
            "recommendation": context.get("recommendation"),
            "alternatives": context.get("alternatives", []),
        },
        "context": context,
        "status": request.status.value,
        "verdict": None
        if settled is None
        else {
            "verdict": settled.verdict.value,
            "reviewer": settled.reviewer,
            "name": settled.name,
            "rationale": settled.rationale,
            "at": isoformat(settled.at),
            "channel": settled.channel,
            "modified_action": request.modified_action.to_json()
            if request.modified_action
            else None,
        },
        # Every person's vote, including approvals that did not settle a two-person item.
        "votes": [v.to_json() for v in request.votes if v.reviewer != POLICY_ACTOR],
        "label": {"override": overridden(request), "needed_human": needed_a_human(request)},
        "outcome": dict(request.outcome) if request.outcome is not None else None,
    }


def examples(
    requests: Iterable[ApprovalRequest], *, overrides_only: bool = False
) -> list[dict[str, Any]]:
    """The examples for the requests that have ground truth, oldest first."""
    chosen = [r for r in requests if has_ground_truth(r) and (overridden(r) or not overrides_only)]
    return [example(r) for r in sorted(chosen, key=lambda r: (r.created_at, r.id))]


def _flat(row: dict[str, Any]) -> dict[str, Any]:
    verdict = row["verdict"] or {}
    outcome = row["outcome"] or {}
    features = row["features"]
    return {
        "id": row["id"],
        "created_at": row["created_at"],
        "agent_id": row["agent_id"],
        "thread_id": row["thread_id"],
        **{k: features[k] for k in ("confidence", "action_kind", "amount", "currency")},
        **{k: features[k] for k in ("reversible", "domain", "sentiment")},
        "labels": _json(features["labels"]),
        "lane": row["routing"]["lane"],
        "risk": row["routing"]["risk"],
        "rules": ";".join(row["routing"]["rules"]),
        "action": _json(row["proposal"]["action"]),
        "recommendation": row["proposal"]["recommendation"],
        "status": row["status"],
        "verdict": verdict.get("verdict"),
        "reviewer": verdict.get("reviewer"),
        "rationale": verdict.get("rationale"),
        "decided_at": verdict.get("at"),
        "modified_action": _json(verdict["modified_action"])
        if verdict.get("modified_action")
        else None,
        "votes": _json(row["votes"]),
        "override": row["label"]["override"],
        "needed_human": row["label"]["needed_human"],
        "outcome_correct": outcome.get("correct"),
        "outcome_note": outcome.get("note"),
    }


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def render(rows: Sequence[dict[str, Any]], fmt: str) -> str:
    """JSONL (one example per line, keys sorted) or CSV (CSV_FIELDS, nested values as JSON,
    text that a spreadsheet would run as a formula prefixed with `'`).

    Raises:
        ValueError: a format other than those in FORMATS.
    """
    if fmt == "jsonl":
        return "".join(json.dumps(row, sort_keys=True, ensure_ascii=False) + "\n" for row in rows)
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=CSV_FIELDS)
        writer.writeheader()
        writer.writerows(safe_row(_flat(row)) for row in rows)
        return out.getvalue()
    raise ValueError(f"unknown format {fmt!r} (one of {', '.join(FORMATS)})")
