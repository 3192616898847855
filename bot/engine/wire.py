"""Wire shapes: every JSON body the agent API and the resume webhook emit, in one place.

The builders (`submit_response`, `request_json`, `webhook_body`) make the dicts sent on the
wire; the pydantic models beside them describe the same shapes for OpenAPI and are checked
against the builders in tests, so the two cannot drift apart.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from bot.core.domain import ApprovalRequest, isoformat
from bot.core.learning import StandingUse
from bot.core.wording import payload_changes

# -- builders -----------------------------------------------------------------------------


def submit_response(
    request: ApprovalRequest, standing: StandingUse | None = None
) -> dict[str, Any]:
    """The body of `201 POST /v1/requests` (CONTRACT section 5); a request approved by a
    standing approval also names it (section 12)."""
    body: dict[str, Any] = {
        "id": request.id,
        "status": request.status.value,
        "lane": request.lane.value,
        "risk": request.risk.value,
        "reasons": list(request.reasons),
        "tier": request.tier,
        "approvals_required": request.approvals_required,
        "created_at": isoformat(request.created_at),
        "review": request.review.value,
    }
    if standing is not None:
        body["standing_approval"] = standing.grant_id
    return body


def webhook_body(request: ApprovalRequest, event_type: str, at: datetime) -> dict[str, Any]:
    """The Standard Webhooks payload of CONTRACT section 7, fixed when the state changes."""
    return {
        "type": event_type,
        "timestamp": isoformat(at),
        "data": {
            "id": request.id,
            "agent_id": request.agent_id,
            "thread_id": request.thread_id,
            "status": request.status.value,
            "action": request.action.to_json(),
            "modified_action": request.modified_action.to_json()
            if request.modified_action
            else None,
            "action_sha256": request.current_action.sha256,
            "votes": [v.to_json() for v in request.votes],
            "decided_at": isoformat(request.decided_at),
            "reasons": list(request.reasons),
            "reasons_text": request.reasons_text,
            "question": request.question,
            "response": request.response,
            # What a reviewer's modify changed, leaf by leaf (empty without one).
            "changes": [
                c.to_json()
                for c in payload_changes(request.action.payload, request.current_action.payload)
            ],
        },
    }


def request_json(request: ApprovalRequest) -> dict[str, Any]:
    """The body of `GET /v1/requests/{id}` (CONTRACT section 5, with section 12's fields)."""
    return {
        "id": request.id,
        "agent_id": request.agent_id,
        "thread_id": request.thread_id,
        "status": request.status.value,
        "lane": request.lane.value,
        "risk": request.risk.value,
        "reasons": list(request.reasons),
        "reasons_text": request.reasons_text,
        "tier": request.tier,
        "approvals_required": request.approvals_required,
        "approvals": len(request.approvals_for_current_action()),
        "review": request.review.value,
        "review_status": request.review_status.value if request.review_status else None,
        "action": request.action.to_json(),
        "action_sha256": request.current_action.sha256,
        "modified_action": request.modified_action.to_json() if request.modified_action else None,
        "confidence": request.confidence,
        "amount": request.amount,
        "currency": request.currency,
        "reversible": request.reversible,
        "domain": request.domain,
        "sentiment": request.sentiment,
        "requested_by": request.requested_by,
        "callback_url": request.callback_url,
        "labels": dict(request.labels),
        "context": dict(request.context),
        "votes": [v.to_json() for v in request.votes],
        "history": [m.to_json() for m in request.history],
        "created_at": isoformat(request.created_at),
        "updated_at": isoformat(request.updated_at),
        "decided_at": isoformat(request.decided_at),
        "deadline_at": isoformat(request.deadline_at),
        "outcome": dict(request.outcome) if request.outcome is not None else None,
        "cost": request.cost,
        "question": request.question,
        "response_schema": dict(request.response_schema) if request.response_schema else None,
        "reject_options": list(request.reject_options),
        "response": request.response,
    }


# -- models (OpenAPI) ---------------------------------------------------------------


class SubmitOut(BaseModel):
    id: str
    status: Literal["approved", "pending", "rejected"]
    lane: Literal["autonomous", "review", "escalate"]
    risk: Literal["low", "medium", "high"]
    reasons: list[str]
    tier: str | None
    approvals_required: int
    created_at: str
    review: Literal["queued", "sampled_out", "none"]
    # Only when a standing approval approved the request: its id (sa_...).
    standing_approval: str | None = None


class VoteOut(BaseModel):
    reviewer: str
    person: str
    name: str
    verdict: Literal["approve", "reject", "modify", "confirm", "reverse", "respond"]
    rationale: str
    at: str
    channel: str
    action_sha256: str
    response: Any = None


class ActionOut(BaseModel):
    kind: str
    summary: str
    payload: dict[str, Any]


class MoveOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    from_: str | None = Field(alias="from")
    to: str
    at: str
    reason: str


class RequestOut(BaseModel):
    id: str
    agent_id: str
    thread_id: str | None
    status: Literal[
        "pending", "approved", "modified", "rejected", "expired", "cancelled", "reversed"
    ]
    lane: Literal["autonomous", "review", "escalate"]
    risk: Literal["low", "medium", "high"]
    reasons: list[str]
    tier: str | None
    approvals_required: int
    approvals: int
    review: Literal["queued", "sampled_out", "none"]
    review_status: str | None
    action: ActionOut
    action_sha256: str
    modified_action: ActionOut | None
    confidence: float
    amount: float
    currency: str
    reversible: bool
    domain: str
    sentiment: float
    requested_by: str | None
    callback_url: str | None
    labels: dict[str, Any]
    context: dict[str, Any]
    votes: list[VoteOut]
    history: list[MoveOut]
    created_at: str
    updated_at: str
    decided_at: str | None
    deadline_at: str | None
    outcome: dict[str, Any] | None
    cost: float | None = None
    reasons_text: list[str] = Field(default_factory=list)
    question: str | None = None
    response_schema: dict[str, Any] | None = None
    reject_options: list[str] = Field(default_factory=list)
    response: Any = None


class RequestList(BaseModel):
    items: list[RequestOut]
    next_cursor: str | None


class ChangeOut(BaseModel):
    path: str
    old: Any
    new: Any


class WebhookData(BaseModel):
    id: str
    agent_id: str
    thread_id: str | None
    status: Literal["approved", "modified", "rejected", "expired", "cancelled", "reversed"]
    action: ActionOut
    modified_action: ActionOut | None
    action_sha256: str
    votes: list[VoteOut]
    decided_at: str | None
    reasons: list[str]
    reasons_text: list[str]
    question: str | None
    response: Any
    changes: list[ChangeOut]


class WebhookOut(BaseModel):
    """A resume webhook's body (Standard Webhooks; CONTRACT section 7)."""

    type: Literal["request.resolved", "request.reversed"]
    timestamp: str
    data: WebhookData
