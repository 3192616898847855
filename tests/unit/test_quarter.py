"""A simulated quarter that learns from itself halfway: the standing approval takes routine
items off the queue with every use audited, and the shadow model scores without routing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.core.domain import ApprovalRequest
from bot.oversight.learning import model_figures, standing_figures, text_lines
from storage import InMemoryRepository
from tests.support.month import simulate_month

START = datetime(2026, 1, 1, tzinfo=UTC)


async def everything(repo: InMemoryRepository) -> list[ApprovalRequest]:
    found: list[ApprovalRequest] = []
    cursor = None
    while True:
        page = await repo.list_requests(limit=500, cursor=cursor)
        found += page.items
        if page.next_cursor is None:
            return found
        cursor = page.next_cursor


async def test_a_quarter_that_learns_halfway() -> None:
    repo = InMemoryRepository()
    quarter = await simulate_month(repo, START, days=90, learn_from=45)
    requests = await everything(repo)
    assert quarter.model_version == 1 and quarter.standing_approved > 50

    (grant,) = await repo.standing_approvals()
    standing = standing_figures(requests, [grant], START + timedelta(days=60), 300.0)
    assert standing.approved == quarter.standing_approved == grant.uses
    assert standing.by_grant == ((grant.id, grant.uses),)
    # Every use is in the audit log as the grantor's vote on channel standing.
    uses = [
        r.event
        for r in await repo.audit_records(actor="web:alice")
        if r.event.event == "voted" and r.event.channel == "standing"
    ]
    assert len(uses) == grant.uses
    assert {e.data["standing_approval"] for e in uses} == {grant.id}
    approved = [r for r in requests if any(v.channel == "standing" for v in r.votes)]
    assert all(r.votes[0].at == r.created_at for r in approved)  # never waited in a queue
    assert all(r.action.kind == "invoice" and r.amount <= 200 for r in approved)
    assert 0 < standing.reviewed_after < standing.approved  # review_sample_rate 0.5

    # Shadow: every request after the model was trained is scored, none before; none is
    # routed on its score.
    model = await repo.active_model()
    assert model is not None and model.created_at >= START + timedelta(days=45)
    learned = model.created_at
    assert all((r.predicted_escalation is not None) == (r.created_at >= learned) for r in requests)
    assert not any("predicted_escalation" in r.reasons for r in requests)
    figures = model_figures(requests, model, mode="shadow", threshold=0.7)
    assert figures.added == 0 and figures.live["count"] > 500
    assert figures.live["auc"] is not None
    text = "\n".join(text_lines(standing, figures))
    assert f"{grant.uses} items approved under standing approvals" in text
    assert "version 1, prediction.mode shadow" in text and "on the live window" in text
