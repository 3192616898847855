"""Outcome metrics on a hand-made history whose answers are counted by hand."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from bot.core.domain import Action, ApprovalRequest, ReviewStatus, Status, Verdict, Vote
from bot.oversight.figures import quality
from routing import Lane, ReviewState, Risk

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def item(n: int, lane: Lane, status: Status, **kw: object) -> ApprovalRequest:
    base = ApprovalRequest(
        id=f"req_{n:03d}",
        agent_id="a",
        action=Action("k", "s"),
        confidence=0.5,
        status=status,
        lane=lane,
        risk=Risk.MEDIUM,
        reasons=(),
        tier="junior",
        approvals_required=1,
        review=ReviewState.NONE,
        created_at=T0,
        updated_at=T0,
        decided_at=T0 + timedelta(minutes=n),
    )
    return dataclasses.replace(base, **kw)  # type: ignore[arg-type]


def vote(verdict: Verdict, minutes: int = 1) -> Vote:
    return Vote("web:ann", "Ann", verdict, "why", T0 + timedelta(minutes=minutes), "web", "x")


def test_precision_recall_success_and_time_to_correct() -> None:
    history = [
        # Escalations: 2 needed a person (reject; approved but reported wrong), 2 did not.
        item(1, Lane.ESCALATE, Status.REJECTED, votes=(vote(Verdict.REJECT),)),
        item(
            2,
            Lane.ESCALATE,
            Status.APPROVED,
            votes=(vote(Verdict.APPROVE),),
            outcome={"correct": False},
        ),
        item(
            3,
            Lane.ESCALATE,
            Status.APPROVED,
            votes=(vote(Verdict.APPROVE),),
            outcome={"correct": True},
        ),
        item(4, Lane.ESCALATE, Status.APPROVED, votes=(vote(Verdict.APPROVE),)),
        # Problems that slipped past escalation: one reversed after 30 minutes, one wrong.
        item(
            30,
            Lane.REVIEW,
            Status.REVERSED,
            votes=(vote(Verdict.REVERSE, 30),),
            review_status=ReviewStatus.REVERSED,
        ),
        item(6, Lane.AUTONOMOUS, Status.APPROVED, outcome={"correct": False}),
        item(7, Lane.AUTONOMOUS, Status.APPROVED, outcome={"correct": True}),
        item(8, Lane.ESCALATE, Status.PENDING, decided_at=None),
    ]
    measured = quality(history)
    assert (measured.escalation_precision.part, measured.escalation_precision.whole) == (2, 4)
    assert (measured.escalation_recall.part, measured.escalation_recall.whole) == (2, 4)
    assert (measured.task_success.part, measured.task_success.whole) == (2, 4)
    assert measured.time_to_correct_median == 30 * 60


def test_empty_history_has_no_rates() -> None:
    measured = quality([])
    assert measured.escalation_precision.value is None
    assert measured.time_to_correct_median is None
