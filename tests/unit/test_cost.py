"""The cost of oversight on a small hand-made history, pinned to the cent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.core.domain import Action, ApprovalRequest, Status, TierMove, Verdict, Vote
from bot.oversight.cost import cost_figures, text_lines
from bot.server.config import parse_config
from routing import Lane, ReviewState, Risk

T0 = datetime(2026, 2, 2, 9, 0, tzinfo=UTC)
RATES = {"junior": 60.0, "senior": 120.0}


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def vote(reviewer: str, minutes: float, channel: str = "web") -> Vote:
    return Vote(reviewer, reviewer, Verdict.APPROVE, "", at(minutes), channel, "x")


def req(n: int, lane: Lane, *votes: Vote, **changes: Any) -> ApprovalRequest:
    fields: dict[str, Any] = {
        "id": f"req_{n:03d}",
        "agent_id": "bot",
        "action": Action("invoice", "Pay", {}),
        "confidence": 0.5,
        "status": Status.APPROVED,
        "lane": lane,
        "risk": Risk.MEDIUM,
        "reasons": (),
        "tier": "junior" if lane is Lane.ESCALATE else None,
        "approvals_required": 1,
        "review": ReviewState.NONE,
        "created_at": T0,
        "updated_at": T0,
        "decided_at": votes[-1].at if votes else T0,
        "votes": votes,
        "history": (TierMove(None, "junior", T0, "start"),) if lane is Lane.ESCALATE else (),
    }
    fields.update(changes)
    return ApprovalRequest(**fields)


HISTORY = [
    # 30 minutes at junior: 30.00
    req(1, Lane.ESCALATE, vote("web:jan", 30), cost=2.0),
    # 15 minutes waiting at junior, then 30 minutes at senior: 60.00
    req(
        2,
        Lane.ESCALATE,
        vote("web:sam", 45),
        tier="senior",
        history=(
            TierMove(None, "junior", T0, "start"),
            TierMove("junior", "senior", at(15), "sla"),
        ),
        cost=1.0,
    ),
    req(3, Lane.AUTONOMOUS, cost=0.5),
    req(4, Lane.AUTONOMOUS, cost=0.5),
    # A standing approval: no reviewer time, saves the median (0.5 h here) at junior.
    req(5, Lane.ESCALATE, Vote("web:jan", "jan", Verdict.APPROVE, "sa", T0, "standing", "x")),
    # The on_timeout policy: no reviewer time either.
    req(6, Lane.ESCALATE, Vote("policy", "policy", Verdict.APPROVE, "", at(240), "policy", "x")),
    req(7, Lane.ESCALATE, status=Status.PENDING, decided_at=None),  # not resolved yet
]


def figures(price: Any) -> Any:
    return cost_figures(HISTORY, price, start=T0, width=timedelta(hours=1), buckets=4)


def test_cost_per_resolution_by_lane_with_prices() -> None:
    found = figures(lambda tier: RATES.get(tier or "", 0.0))
    lanes = {c.lane: c for c in found.by_lane}
    escalate = lanes["escalate"]
    assert escalate.resolutions == 4 and escalate.agent_cost == 3.0
    assert escalate.reviewer_hours == pytest.approx(1.0)
    assert escalate.reviewer_cost == pytest.approx(90.0)
    assert escalate.per_resolution == pytest.approx(93.0 / 4)
    assert lanes["autonomous"].per_resolution == pytest.approx(0.5)
    assert lanes["review"].resolutions == 0 and lanes["review"].per_resolution is None
    assert found.overall.per_resolution == pytest.approx(94.0 / 6)
    assert found.standing_hours_saved == pytest.approx(0.5)
    assert found.standing_cost_saved == pytest.approx(30.0)
    # Decided in the first hour: 1, 3, 4, 5 (and 2 at 45 min); 6 in the fifth hour (outside).
    first_hour = found.trend[0]
    assert first_hour[0] == T0 and first_hour[1] == pytest.approx((32.0 + 61.0 + 1.0) / 5)
    text = "\n".join(text_lines(found))
    assert "escalate         4 resolved  agent 3.00  reviewers 1.0 h (15.0 min each)  23.25" in text
    assert "standing approvals saved about 0.5 reviewer hours (30.00)" in text


def test_without_prices_reviewer_time_is_reported_in_hours() -> None:
    found = figures(lambda tier: None)
    assert not found.priced and found.standing_cost_saved is None
    assert all(c.per_resolution is None for c in found.by_lane)
    text = "\n".join(text_lines(found))
    assert "set oversight.reviewer_hourly_cost" in text
    assert "trend (reviewer hours per resolution)" in text


def test_config_prices_by_tier() -> None:
    config = parse_config({"oversight": {"reviewer_hourly_cost": {"junior": 60}}}, env={})
    found = figures(config.settings.oversight.hourly_cost)
    lanes = {c.lane: c for c in found.by_lane}
    assert lanes["escalate"].reviewer_cost == pytest.approx(30.0)  # senior is not priced
    assert parse_config({}, env={}).settings.oversight.hourly_cost("junior") is None
