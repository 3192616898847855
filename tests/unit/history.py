"""Builders for hand-made decision histories: stored requests as the engine leaves them."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.core.domain import Action, ApprovalRequest, ReviewStatus, Status, Verdict, Vote
from routing import Lane, ReviewState, Risk

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def vote(
    verdict: Verdict, reviewer: str = "web:ann", rationale: str = "why", minutes: int = 1
) -> Vote:
    return Vote(
        reviewer,
        reviewer.split(":")[-1].title(),
        verdict,
        rationale,
        T0 + timedelta(minutes=minutes),
        "web",
        "x",
    )


def request(n: int, confidence: float, lane: Lane, status: Status, **kw: Any) -> ApprovalRequest:
    base = ApprovalRequest(
        id=f"req_{n:03d}",
        agent_id="invoice-bot",
        action=Action("invoice", f"File INV-{n}", {"invoice": n}),
        confidence=confidence,
        status=status,
        lane=lane,
        risk=Risk.LOW if lane is not Lane.ESCALATE else Risk.MEDIUM,
        reasons=("low_confidence",) if lane is Lane.ESCALATE else (),
        tier="junior" if lane is Lane.ESCALATE else None,
        approvals_required=1,
        review=ReviewState.NONE,
        created_at=T0 + timedelta(seconds=n),
        updated_at=T0 + timedelta(seconds=n),
        decided_at=None if status is Status.PENDING else T0 + timedelta(minutes=1),
    )
    return dataclasses.replace(base, **kw)


def approved(n: int, confidence: float, lane: Lane = Lane.ESCALATE, **kw: Any) -> ApprovalRequest:
    """A person looked at it and agreed with the agent."""
    return request(n, confidence, lane, Status.APPROVED, votes=(vote(Verdict.APPROVE),), **kw)


def rejected(n: int, confidence: float, lane: Lane = Lane.ESCALATE, **kw: Any) -> ApprovalRequest:
    """A person overrode the agent."""
    return request(n, confidence, lane, Status.REJECTED, votes=(vote(Verdict.REJECT),), **kw)


def confirmed(n: int, confidence: float, lane: Lane = Lane.AUTONOMOUS) -> ApprovalRequest:
    return request(
        n,
        confidence,
        lane,
        Status.APPROVED,
        votes=(vote(Verdict.CONFIRM),),
        review=ReviewState.QUEUED,
        review_status=ReviewStatus.CONFIRMED,
    )


def reversed_(n: int, confidence: float, lane: Lane = Lane.AUTONOMOUS) -> ApprovalRequest:
    return request(
        n,
        confidence,
        lane,
        Status.REVERSED,
        votes=(vote(Verdict.REVERSE, rationale="wrong customer"),),
        review=ReviewState.QUEUED,
        review_status=ReviewStatus.REVERSED,
    )


def unjudged(n: int, confidence: float, lane: Lane = Lane.AUTONOMOUS) -> ApprovalRequest:
    """Proceeded with nobody looking and no outcome reported."""
    return request(n, confidence, lane, Status.APPROVED)
