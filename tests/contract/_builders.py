"""Domain values for the repository tests, with every field set to something non-default."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.core.domain import (
    Action,
    ApprovalRequest,
    AuditEvent,
    OutboxKind,
    OutboxMessage,
    ReviewStatus,
    Status,
    TierMove,
    Verdict,
    Vote,
)
from routing import Lane, ReviewState, Risk

# Microseconds on purpose: they must survive every backend.
T0 = datetime(2026, 3, 4, 5, 6, 7, 890123, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def request(request_id: str = "req_0001", **changes: Any) -> ApprovalRequest:
    action = Action("payment", "Pay INV-123 to ACME", {"invoice": "INV-123", "lines": [1, 2.5]})
    base = ApprovalRequest(
        id=request_id,
        agent_id="invoice-bot",
        action=action,
        confidence=0.62,
        status=Status.PENDING,
        lane=Lane.ESCALATE,
        risk=Risk.HIGH,
        reasons=("high_value_transaction", "regulated_domain"),
        tier="junior",
        approvals_required=2,
        review=ReviewState.NONE,
        created_at=T0,
        updated_at=at(1),
        thread_id="lg-42",
        amount=5000.5,
        currency="USD",
        reversible=False,
        domain="financial",
        sentiment=-0.2,
        requested_by="slack:U0REQ",
        callback_url="http://127.0.0.1:9000/resume",
        labels={"customer_tier": "gold", "n": 3},
        context={"summary": "ünïcode ✓", "alternatives": [], "customer": {"id": 7}},
        deadline_at=at(900),
        remind_at=at(600),
        history=(TierMove(None, "junior", T0, "start"),),
    )
    return dataclasses.replace(base, **changes)


def vote(reviewer: str = "slack:U1", verdict: Verdict = Verdict.APPROVE, **changes: Any) -> Vote:
    base = Vote(
        reviewer=reviewer,
        name=reviewer.upper(),
        verdict=verdict,
        rationale="looks right",
        at=at(30),
        channel="slack",
        action_sha256=request().action.sha256,
    )
    return dataclasses.replace(base, **changes)


def decided(original: ApprovalRequest) -> ApprovalRequest:
    """`original` after two votes, a modify and an escalation: every optional field set."""
    modified = Action("payment", "Pay INV-123 to ACME (partial)", {"invoice": "INV-123"})
    return dataclasses.replace(
        original,
        status=Status.MODIFIED,
        tier="senior",
        modified_action=modified,
        review_status=ReviewStatus.CLOSED,
        decided_at=at(120).astimezone(UTC),
        deadline_at=None,
        remind_at=None,
        outcome={"correct": False, "note": "wrong amount"},
        votes=(
            *original.votes,
            vote("slack:U1"),
            vote("teams:abc", Verdict.MODIFY, at=at(60), channel="teams"),
        ),
        history=(*original.history, TierMove("junior", "senior", at(50), "sla")),
        updated_at=at(120),
    )


def outbox(
    message_id: str,
    *,
    due: datetime = T0,
    kind: OutboxKind = OutboxKind.WEBHOOK,
    request_id: str | None = "req_0001",
    agent_id: str = "invoice-bot",
) -> OutboxMessage:
    return OutboxMessage(
        id=message_id,
        kind=kind,
        request_id=request_id,
        payload={"agent_id": agent_id, "url": "http://127.0.0.1:9000/resume", "body": {}},
        created_at=T0,
        next_attempt_at=due,
    )


def event(name: str = "submitted", **changes: Any) -> AuditEvent:
    base = AuditEvent(
        event=name,
        at=T0,
        request_id="req_0001",
        actor="agent:invoice-bot",
        channel="api",
        reason=None,
        risk="high",
        data={"kind": "payment", "amount": 5000.5},
    )
    return dataclasses.replace(base, **changes)
