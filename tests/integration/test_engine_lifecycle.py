"""The state machine of CONTRACT section 6 on every repository backend."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import pytest

from bot.core.clock import ManualClock
from bot.core.domain import OutboxKind, OutboxStatus, ReviewStatus, Status, Verdict, verify_chain
from bot.core.errors import Conflict, DeliveryError, InvalidInput, NotAllowed
from bot.core.views import CardView
from routing import ReviewState
from tests.conftest import RepoFactory
from tests.support.world import TIERS, World, make_config, new_request


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def world(repo_factory: RepoFactory, clock: ManualClock) -> World:
    return World(await repo_factory(), make_config(), clock)


async def audit_events(world: World, request_id: str) -> list[str]:
    return [r.event.event for r in await world.repo.audit_records(request_id=request_id)]


async def test_seed_routing_examples_through_the_engine(world: World) -> None:
    cases = [
        ({"confidence": 0.9}, "approved", "autonomous", []),
        ({"confidence": 0.6}, "approved", "review", []),
        ({"confidence": 0.3}, "pending", "escalate", ["low_confidence"]),
        (
            {"confidence": 0.95, "kind": "payment", "amount": 5000},
            "pending",
            "escalate",
            ["high_value_transaction"],
        ),
        ({"confidence": 0.9, "sentiment": -0.8}, "pending", "escalate", ["negative_sentiment"]),
        ({"confidence": 0.9, "domain": "legal"}, "pending", "escalate", ["regulated_domain"]),
    ]
    for fields, status, lane, reasons in cases:
        result = await world.engine.submit("invoice-bot", new_request(**fields))
        assert (result.response["status"], result.response["lane"]) == (status, lane), fields
        assert result.response["reasons"] == reasons
    irreversible = await world.engine.submit(
        "invoice-bot", new_request(confidence=0.99, reversible=False)
    )
    assert irreversible.response["approvals_required"] == 2
    assert irreversible.response["tier"] == "manager"


async def test_escalated_request_posts_one_card_per_tier_channel(world: World) -> None:
    rid = await world.submit(confidence=0.3)
    assert await world.worker.drain() >= 1
    cards = await world.repo.cards(rid)
    assert [(c.channel, c.tier) for c in cards] == [("web", "senior")]
    assert await audit_events(world, rid) == ["submitted", "routed", "posted"]


async def test_two_person_rule_needs_two_distinct_reviewers(world: World) -> None:
    rid = await world.submit(confidence=0.9, reversible=False)
    after_one = await world.engine.vote(
        rid, "web:max", Verdict.APPROVE, channel="web", rationale="checked the ticket"
    )
    assert after_one.status is Status.PENDING
    with pytest.raises(NotAllowed) as second:
        await world.engine.vote(rid, "web:max", Verdict.APPROVE, channel="web", rationale="again")
    assert second.value.code == "second_vote"
    done = await world.engine.vote(
        rid, "web:mia", Verdict.APPROVE, channel="web", rationale="confirmed with finance"
    )
    assert done.status is Status.APPROVED
    assert [v.reviewer for v in done.votes] == ["web:max", "web:mia"]
    webhooks = await world.repo.list_outbox(kind=OutboxKind.WEBHOOK)
    assert len(webhooks) == 1
    data = webhooks[0].payload["body"]["data"]
    assert data["status"] == "approved"
    assert data["action_sha256"] == done.action.sha256
    assert [v["reviewer"] for v in data["votes"]] == ["web:max", "web:mia"]


async def test_one_reject_ends_the_item_and_later_votes_are_refused(world: World) -> None:
    rid = await world.submit(confidence=0.9, reversible=False)
    await world.engine.vote(rid, "web:max", Verdict.APPROVE, channel="web", rationale="fine")
    rejected = await world.engine.vote(
        rid, "web:mia", Verdict.REJECT, channel="web", rationale="wrong vendor"
    )
    assert rejected.status is Status.REJECTED
    assert rejected.decided_at == world.clock.now()
    with pytest.raises(NotAllowed) as late:
        await world.engine.vote(rid, "web:sam", Verdict.APPROVE, channel="web", rationale="ok")
    assert late.value.code == "already_decided"
    assert "reject by web:mia" in late.value.message


async def test_modify_invalidates_earlier_approvals(world: World) -> None:
    rid = await world.submit(
        confidence=0.9, reversible=False, payload={"invoice": "INV-1", "amount": 90}
    )
    original = await world.repo.get(rid)
    assert original is not None
    await world.engine.vote(rid, "web:max", Verdict.APPROVE, channel="web", rationale="ok")
    modified = await world.engine.vote(
        rid,
        "web:mia",
        Verdict.MODIFY,
        channel="web",
        rationale="pay 80, not 90",
        modified_payload={"invoice": "INV-1", "amount": 80},
    )
    # max approved the old action; only mia's modify counts toward the new one.
    assert modified.status is Status.PENDING
    assert modified.modified_action is not None
    assert modified.current_action.sha256 != original.action.sha256
    assert len(modified.approvals_for_current_action()) == 1
    final = await world.engine.vote(
        rid, "web:mo", Verdict.APPROVE, channel="web", rationale="80 is right"
    )
    assert final.status is Status.MODIFIED
    await world.worker.drain()
    webhook = (await world.repo.list_outbox(kind=OutboxKind.WEBHOOK))[0]
    data = webhook.payload["body"]["data"]
    assert data["modified_action"]["payload"] == {"invoice": "INV-1", "amount": 80}
    assert data["action_sha256"] == final.current_action.sha256


async def test_refusals_change_nothing(world: World) -> None:
    rid = await world.submit(confidence=0.3, requested_by="web:sam")
    before = await world.repo.get(rid)
    cases = [
        ("web:sam", "self_approval"),
        ("web:owner", "agent_owner"),
        ("web:jan", "not_a_reviewer"),
        ("slack:U0STRANGER", "not_a_reviewer"),
    ]
    for reviewer, code in cases:
        with pytest.raises(NotAllowed) as refused:
            await world.engine.vote(rid, reviewer, Verdict.APPROVE, channel="web")
        assert refused.value.code == code
    with pytest.raises(InvalidInput):
        await world.engine.vote(rid, "web:sue", Verdict.REJECT, channel="web", rationale="  ")
    with pytest.raises(InvalidInput):
        await world.engine.vote(rid, "web:sue", Verdict.MODIFY, channel="web", rationale="x")
    after = await world.repo.get(rid)
    assert after == before
    assert await audit_events(world, rid) == ["submitted", "routed"]


async def test_higher_tier_may_act_on_lower_tier_items(world: World) -> None:
    rid = await world.submit(confidence=0.3)  # medium risk: starts at senior
    done = await world.engine.vote(rid, "web:max", Verdict.APPROVE, channel="web")
    assert done.status is Status.APPROVED


async def test_high_risk_needs_a_rationale_even_to_approve(world: World) -> None:
    rid = await world.submit(confidence=0.95, kind="payment", amount=5000)
    with pytest.raises(InvalidInput) as missing:
        await world.engine.vote(rid, "web:max", Verdict.APPROVE, channel="web")
    assert missing.value.field == "rationale"
    done = await world.engine.vote(
        rid, "web:max", Verdict.APPROVE, channel="web", rationale="PO matches"
    )
    assert done.status is Status.APPROVED
    assert done.votes[0].rationale == "PO matches"


async def test_simultaneous_clicks_record_exactly_one_verdict(world: World) -> None:
    rid = await world.submit(confidence=0.3)

    async def click(reviewer: str) -> str:
        try:
            await world.engine.vote(rid, reviewer, Verdict.APPROVE, channel="web")
        except NotAllowed as exc:
            return exc.code
        return "won"

    results = await asyncio.gather(click("web:sam"), click("web:sue"))
    assert sorted(results) == ["already_decided", "won"]
    final = await world.repo.get(rid)
    assert final is not None and len(final.votes) == 1
    assert (await audit_events(world, rid)).count("voted") == 1


async def test_escalation_and_expiry_over_36_hours_with_a_restart(
    repo_factory: RepoFactory, clock: ManualClock
) -> None:
    config = make_config(routing={"on_timeout": "expire"})
    first = World(await repo_factory(), config, clock)
    rid = await first.submit(confidence=0.1)  # medium risk -> senior, 1 h SLA
    await first.worker.drain()
    clock.advance(timedelta(minutes=30))
    assert await first.engine.sweep() == 0
    clock.advance(timedelta(minutes=31))
    assert await first.engine.sweep() == 1
    moved = await first.repo.get(rid)
    assert moved is not None and moved.tier == "manager" and moved.status is Status.PENDING
    await first.worker.drain()
    assert [(c.channel, c.tier) for c in await first.repo.cards(rid)] == [
        ("web", "senior"),
        ("web", "manager"),
    ]

    # The process restarts; nothing pending is lost, and 36 hours pass.
    second = World(await repo_factory(), config, clock)
    clock.advance(timedelta(hours=36))
    assert await second.engine.sweep() == 1
    assert await second.engine.sweep() == 0
    final = await second.repo.get(rid)
    assert final is not None and final.status is Status.EXPIRED
    assert [m.to_tier for m in final.history] == ["senior", "manager"]
    events = await audit_events(second, rid)
    assert events.count("escalated") == 1
    assert events.count("expired") == 1
    assert events[-1] == "resolved"
    webhooks = await second.repo.list_outbox(kind=OutboxKind.WEBHOOK)
    assert [w.payload["body"]["data"]["status"] for w in webhooks if w.request_id == rid] == [
        "expired"
    ]
    assert verify_chain(await second.repo.audit_records()).ok


async def test_on_timeout_by_risk_can_approve_low_risk(
    repo_factory: RepoFactory, clock: ManualClock
) -> None:
    routing = {
        "on_timeout": {"low": "approve", "medium": "reject", "high": "reject"},
        "rules": [{"name": "small_refund", "when": 'action.kind == "refund"', "risk": "low"}],
    }
    world = World(await repo_factory(), make_config(routing=routing), clock)
    low = await world.submit(kind="refund")
    medium = await world.submit(confidence=0.2)
    for _ in range(3):  # each tier's window in turn (junior 15 m, senior 1 h, manager 4 h)
        clock.advance(timedelta(hours=5))
        await world.engine.sweep()
    low_final, medium_final = await world.repo.get(low), await world.repo.get(medium)
    assert low_final is not None and low_final.status is Status.APPROVED
    assert low_final.votes[-1].reviewer == "policy"
    assert medium_final is not None and medium_final.status is Status.REJECTED


async def test_reminder_is_queued_once(repo_factory: RepoFactory, clock: ManualClock) -> None:
    # Only junior has remind_after; a low-risk rule routes items there.
    routing = {"rules": [{"name": "low_rule", "when": 'action.kind == "ping"', "risk": "low"}]}
    world = World(await repo_factory(), make_config(routing=routing), clock)
    rid = await world.submit(kind="ping")
    clock.advance(timedelta(minutes=9))
    assert await world.engine.remind() == 0
    clock.advance(timedelta(minutes=2))
    assert await world.engine.remind() == 1
    assert await world.engine.remind() == 0
    assert "reminded" in await audit_events(world, rid)
    assert len(await world.repo.list_outbox(kind=OutboxKind.REMIND)) == 1


async def test_cancel_only_while_pending(world: World) -> None:
    rid = await world.submit(confidence=0.3)
    cancelled = await world.engine.cancel("invoice-bot", rid)
    assert cancelled.status is Status.CANCELLED
    with pytest.raises(Conflict):
        await world.engine.cancel("invoice-bot", rid)
    with pytest.raises(NotAllowed):
        await world.engine.vote(rid, "web:sam", Verdict.APPROVE, channel="web")


async def test_stopped_agent_gets_every_request_rejected(world: World) -> None:
    await world.engine.set_stopped(
        "invoice-bot", True, actor="web:max", reason="runaway refunds", channel="web"
    )
    result = await world.engine.submit("invoice-bot", new_request(confidence=0.99))
    assert result.response["status"] == "rejected"
    assert result.response["reasons"] == ["agent_stopped"]
    await world.engine.set_stopped("invoice-bot", False, actor="web:max", reason="", channel="web")
    again = await world.engine.submit("invoice-bot", new_request(confidence=0.99))
    assert again.response["status"] == "approved"
    kinds = [r.event.event for r in await world.repo.audit_records()]
    assert "stopped" in kinds and "started" in kinds
    with pytest.raises(NotAllowed):
        world.engine.check_stop_authority("web:jan")
    world.engine.check_stop_authority("web:max")


async def test_idempotency_key_replays_or_conflicts(world: World) -> None:
    first = await world.engine.submit(
        "invoice-bot", new_request(confidence=0.3), idempotency_key="k1", body_sha256="aaa"
    )
    replay = await world.engine.submit(
        "invoice-bot", new_request(confidence=0.3), idempotency_key="k1", body_sha256="aaa"
    )
    assert first.created and not replay.created
    assert replay.response == first.response
    with pytest.raises(Conflict) as clash:
        await world.engine.submit(
            "invoice-bot", new_request(confidence=0.4), idempotency_key="k1", body_sha256="bbb"
        )
    assert clash.value.code == "idempotency_key_reused"
    page = await world.repo.list_requests(agent_id="invoice-bot")
    assert len(page.items) == 1


async def test_review_lane_confirm_and_reverse(world: World) -> None:
    confirmed = await world.submit(confidence=0.6)
    reversed_ = await world.submit(confidence=0.6)
    item = await world.repo.get(confirmed)
    assert item is not None
    assert item.review is ReviewState.QUEUED and item.review_status is ReviewStatus.OPEN
    await world.worker.drain()
    ok = await world.engine.vote(confirmed, "web:jan", Verdict.CONFIRM, channel="web")
    assert ok.status is Status.APPROVED and ok.review_status is ReviewStatus.CONFIRMED
    with pytest.raises(InvalidInput):
        await world.engine.vote(reversed_, "web:jan", Verdict.REVERSE, channel="web")
    back = await world.engine.vote(
        reversed_, "web:jan", Verdict.REVERSE, channel="web", rationale="duplicate invoice"
    )
    assert back.status is Status.REVERSED
    types = [
        (w.request_id, w.payload["body"]["type"])
        for w in await world.repo.list_outbox(kind=OutboxKind.WEBHOOK)
    ]
    assert (reversed_, "request.reversed") in types
    with pytest.raises(NotAllowed):
        await world.engine.vote(reversed_, "web:jill", Verdict.CONFIRM, channel="web")


async def test_outcome_is_recorded_and_audited(world: World) -> None:
    rid = await world.submit(confidence=0.9)
    updated = await world.engine.record_outcome("invoice-bot", rid, False, "customer complained")
    assert updated.outcome is not None and updated.outcome["correct"] is False
    assert "outcome" in await audit_events(world, rid)


async def test_dead_channel_does_not_block_other_messages(world: World) -> None:
    rid = await world.submit(confidence=0.3)
    await world.worker.drain()
    pending = await world.repo.list_outbox(status=OutboxStatus.PENDING)
    assert pending == []
    assert (await world.repo.cards(rid))[0].channel == "web"


class EditingChannel:
    """A chat platform stand-in that records card edits, or refuses them."""

    def __init__(self, name: str, refuse: DeliveryError | None = None) -> None:
        self.name = name
        self.refuse = refuse
        self.edits: list[str] = []

    async def post_card(self, view: CardView) -> Mapping[str, Any]:
        return {"target": view.target}

    async def update_card(self, ref: Mapping[str, Any], view: CardView) -> None:
        if self.refuse is not None:
            raise self.refuse
        self.edits.append(view.request.status.value)

    async def remind(self, ref: Mapping[str, Any], view: CardView) -> None:
        return None


@pytest.mark.parametrize("retryable", [True, False])
async def test_one_channel_refusing_an_edit_leaves_no_other_card_stale(
    repo_factory: RepoFactory, clock: ManualClock, retryable: bool
) -> None:
    tiers = [{**tier, "slack_channel": "C1", "teams_channel": "19:t"} for tier in TIERS]
    refusal = DeliveryError("Slack chat.update: ratelimited", retryable=retryable, retry_after=7)
    slack, teams = EditingChannel("slack", refusal), EditingChannel("teams")
    world = World(
        await repo_factory(),
        make_config(tiers=tiers),
        clock,
        channels={"slack": slack, "teams": teams},
    )
    rid = await world.submit(confidence=0.3)
    await world.worker.drain()
    # Posted concurrently: the cards table holds them in whichever order they came back.
    assert sorted(c.channel for c in await world.repo.cards(rid))[:2] == ["slack", "teams"]

    await world.engine.vote(rid, "web:sam", Verdict.APPROVE, channel="web")
    await world.worker.drain()

    assert teams.edits == ["approved"]  # tried although Slack, first in line, refused
    [update] = await world.repo.list_outbox(kind=OutboxKind.UPDATE_CARDS)
    assert "ratelimited" in (update.last_error or "")
    if retryable:
        assert update.status is OutboxStatus.PENDING
        assert update.next_attempt_at >= clock.now() + timedelta(seconds=7)
    else:
        assert update.status is OutboxStatus.DEAD
