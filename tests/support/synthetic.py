"""Synthetic decision histories with a known signal (or none), for the escalation model."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from bot.core.domain import Action, ApprovalRequest, Status, Verdict, Vote, new_id
from routing import Lane, ReviewState, Risk

START = datetime(2026, 1, 1, tzinfo=UTC)
KINDS = ("invoice", "refund", "payment", "reply")
TIERS = ("new", "silver", "gold")


def needs_a_person(kind: str, customer_tier: str, at: datetime) -> bool:
    """The known signal: refunds to new customers at night need a human."""
    return kind == "refund" and customer_tier == "new" and (at.hour < 6 or at.hour >= 22)


def history(
    count: int = 2000,
    days: int = 60,
    *,
    signal: bool = True,
    noise: float = 0.05,
    seed: int = 18,
) -> list[ApprovalRequest]:
    """`count` requests over `days`, every one settled by a person.

    With `signal`, a person rejects what `needs_a_person` says, missing such an item with
    probability `noise` and rejecting another one a tenth as often; without it, verdicts
    are coin flips at a similar base rate, so nothing in the request predicts them.
    """
    rng = random.Random(seed)
    requests = []
    step = timedelta(days=days) / count
    for n in range(count):
        at = START + step * n + timedelta(seconds=rng.randint(0, 600))
        kind = rng.choice(KINDS)
        # Refunds to new customers are common enough to learn from.
        customer_tier = "new" if kind == "refund" and rng.random() < 0.5 else rng.choice(TIERS)
        if signal:
            truth = needs_a_person(kind, customer_tier, at)
            bad = rng.random() >= noise if truth else rng.random() < noise / 10
        else:
            bad = rng.random() < 0.12
        verdict = Verdict.REJECT if bad else Verdict.APPROVE
        decided = at + timedelta(minutes=rng.randint(1, 30))
        requests.append(
            ApprovalRequest(
                id=new_id("req", at),
                agent_id=rng.choice(("support-bot", "billing-bot")),
                action=Action(kind, f"{kind} for order {n}", {"order": n}),
                confidence=rng.uniform(0.2, 0.7),
                status=Status.REJECTED if bad else Status.APPROVED,
                lane=Lane.ESCALATE,
                risk=Risk.MEDIUM,
                reasons=("low_confidence",),
                tier="junior",
                approvals_required=1,
                review=ReviewState.NONE,
                created_at=at,
                updated_at=decided,
                decided_at=decided,
                amount=round(rng.uniform(5, 400), 2),
                currency="EUR",
                sentiment=rng.uniform(-0.5, 0.5),
                labels={"customer_tier": customer_tier, "customer_id": f"c{rng.randint(1, 300)}"},
                votes=(Vote("web:ann", "Ann", verdict, "checked", decided, "web", "x"),),
            )
        )
    return requests
