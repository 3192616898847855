"""A simulated quarter that learns from itself halfway, run twice over the same traffic.

In shadow mode the standing approval takes routine items off the queue with every use
audited, and the model scores without routing: its skill on the live window and the
escalations it would add or avoid are reported. In active mode (with the organisation no
longer escalating on the agent's confidence alone) fewer requests escalate and more of the
wrong proposals reach a person, counted against the simulation's ground truth.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.core.domain import ApprovalRequest, AuditEvent
from bot.core.learning import PredictionModel, StandingApproval
from bot.oversight.learning import (
    ModelFigures,
    html_section,
    model_figures,
    standing_figures,
    text_lines,
)
from storage import InMemoryRepository
from tests.support.month import (
    ACTIVE,
    SHADOW,
    MonthFigures,
    Routed,
    month_config,
    routed,
    simulate_month,
)

START = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Quarter:
    figures: MonthFigures
    requests: list[ApprovalRequest]
    grants: list[StandingApproval]
    model: PredictionModel
    standing_votes: list[AuditEvent]
    modelled: ModelFigures
    learned: Routed


async def _quarter(then: Mapping[str, Any]) -> Quarter:
    repo = InMemoryRepository()
    figures = await simulate_month(repo, START, days=90, learn_from=45, then=then)
    requests: list[ApprovalRequest] = []
    cursor = None
    while True:
        page = await repo.list_requests(limit=500, cursor=cursor)
        requests += page.items
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    model = await repo.active_model()
    assert model is not None and figures.learned_at is not None
    prediction = month_config(then).settings.prediction
    votes = [
        r.event
        for r in await repo.audit_records(actor="web:alice")
        if r.event.event == "voted" and r.event.channel == "standing"
    ]
    return Quarter(
        figures=figures,
        requests=requests,
        grants=list(await repo.standing_approvals()),
        model=model,
        standing_votes=votes,
        modelled=model_figures(
            requests,
            model,
            mode=prediction.mode,
            threshold=prediction.threshold,
            prepare_above=prediction.prepare_above,
        ),
        learned=routed(
            requests, figures.wrong, figures.learned_at, prepare_above=prediction.prepare_above
        ),
    )


@pytest.fixture(scope="module")
def shadow() -> Quarter:
    return asyncio.run(_quarter(SHADOW))


@pytest.fixture(scope="module")
def active() -> Quarter:
    return asyncio.run(_quarter(ACTIVE))


def test_standing_approvals_take_routine_items_off_the_queue(shadow: Quarter) -> None:
    quarter, requests = shadow.figures, shadow.requests
    assert quarter.model_version == 1 and quarter.standing_approved > 50
    (grant,) = shadow.grants
    standing = standing_figures(requests, [grant], START + timedelta(days=60), 300.0)
    assert standing.approved == quarter.standing_approved == grant.uses
    assert standing.by_grant == ((grant.id, grant.uses),)
    # Every use is in the audit log as the grantor's vote on channel standing.
    assert len(shadow.standing_votes) == grant.uses
    assert {e.data["standing_approval"] for e in shadow.standing_votes} == {grant.id}
    approved = [r for r in requests if any(v.channel == "standing" for v in r.votes)]
    assert all(r.votes[0].at == r.created_at for r in approved)  # never waited in a queue
    assert all(r.action.kind == "invoice" and r.amount <= 200 for r in approved)
    assert 0 < standing.reviewed_after < standing.approved  # review_sample_rate 0.5
    text = "\n".join(text_lines(standing, shadow.modelled))
    assert f"{grant.uses} items approved under standing approvals" in text


def test_shadow_mode_scores_without_routing_and_shows_the_would_be_effect(
    shadow: Quarter,
) -> None:
    requests, model = shadow.requests, shadow.model
    # Every request after the model was trained is scored, none before; none is routed on
    # its score.
    learned = shadow.figures.learned_at
    assert model.created_at == learned == START + timedelta(days=45)
    assert all((r.predicted_escalation is not None) == (r.created_at >= learned) for r in requests)
    assert not any("predicted_escalation" in r.reasons for r in requests)
    figures = shadow.modelled
    # The simulation's wrong proposals follow a signal the features carry (new suppliers,
    # at night), so the model has real skill on what happened after it was trained.
    assert figures.live["count"] > 1000 and figures.live["auc"] > 0.9
    assert not figures.drift
    # Its would-be effect: escalations it would add (most of them needed a person), and
    # low-confidence escalations it scores low (most of them needed nobody).
    assert figures.added == 0 and figures.prepared == 0
    assert figures.would_add > 20 and figures.would_add_needed > figures.would_add / 3
    assert figures.escalated_below > 200
    assert figures.escalated_below_needed_nobody > 0.7 * figures.escalated_below
    assert figures.before is not None and figures.since is not None
    text = "\n".join(text_lines(standing_figures(requests, [], learned, None), figures))
    assert "version 1, prediction.mode shadow, threshold 0.3" in text
    assert f"on the live window {figures.live['auc']:.3f}" in text
    assert f"scored above the threshold but proceeded: {figures.would_add} " in text
    assert "since it was activated (2026-02-15 00:00): escalation rate" in text
    assert "prepared before it fails" not in text


def test_active_mode_escalates_less_and_catches_more_of_what_is_wrong(
    shadow: Quarter, active: Quarter
) -> None:
    # Same traffic: the same proposals, and the same wrong ones, at the same times.
    assert active.figures.requests == shadow.figures.requests
    assert len(active.figures.wrong) == len(shadow.figures.wrong)
    before, after = shadow.learned, active.learned
    assert before.requests == after.requests and before.wrong == after.wrong > 100
    # The figures that answer the issue: a lower escalation rate at equal or better recall
    # of the wrong proposals (decided by a person before they went through).
    assert after.escalation_rate < before.escalation_rate - 0.05
    assert after.recall >= before.recall + 0.2
    # What proceeds near the threshold is prepared: posted for review, flagged.
    assert before.prepared == 0 < after.prepared
    assert after.prepared_wrong > 0

    figures = active.modelled
    assert figures.live["auc"] > 0.9
    assert figures.added > 20 and figures.would_add == 0  # above the threshold escalates
    assert figures.prepared == after.prepared and figures.prepare_above == pytest.approx(0.15)
    assert figures.since is not None and figures.before is not None
    since, earlier = figures.since, figures.before
    assert since.escalation_rate is not None and earlier.escalation_rate is not None
    assert since.escalation_rate < earlier.escalation_rate
    assert since.recall is not None and earlier.recall is not None
    assert since.recall > earlier.recall
    # A standing approval never covers what the model sends to a person.
    flagged = [r for r in active.requests if "predicted_escalation" in r.reasons]
    assert flagged and not any(v.channel == "standing" for r in flagged for v in r.votes)

    standing = standing_figures(active.requests, active.grants, START, None)
    text = "\n".join(text_lines(standing, figures))
    html = html_section(standing, figures)
    for shown in (text, html):
        assert "prediction.mode active" in shown
        assert f"escalations added by the model: {figures.added}" in shown
        assert f"prepared before it fails: {figures.prepared} proceeded" in shown
        assert f"escalation rate {since.escalation_rate:.1%}" in shown
        assert f"{standing.approved} items approved under standing approvals" in shown
