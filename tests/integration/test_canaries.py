"""Attention checks (oversight.canaries): mixed into the queue, never delivered to an agent."""

from __future__ import annotations

import pytest

from bot.core.clock import ManualClock
from bot.core.domain import OutboxKind, Status, Verdict
from bot.core.errors import NotFound
from bot.engine.canaries import CanaryPolicy
from bot.oversight.figures import compute
from storage import InMemoryRepository
from tests.conftest import RepoFactory
from tests.support.world import World, make_config


@pytest.fixture
async def world(repo_factory: RepoFactory) -> World:
    made = World(await repo_factory(), make_config(), ManualClock())
    made.engine.canaries = CanaryPolicy(rate=1.0)
    return made


async def canaries_of(world: World) -> list[str]:
    page = await world.repo.list_requests(limit=200)
    return [r.id for r in page.items if r.canary]


async def test_a_canary_joins_the_same_tier_and_gets_a_card(world: World) -> None:
    real_id = await world.submit(confidence=0.3)
    [canary_id] = await canaries_of(world)
    real, canary = await world.engine.get(real_id), await world.engine.get(canary_id)

    assert (canary.tier, canary.risk, canary.lane) == (real.tier, real.risk, real.lane)
    assert canary.status is Status.PENDING and canary.agent_id == "invoice-bot"
    assert canary.deadline_at is not None and canary.callback_url is None
    await world.worker.drain()
    assert [c.channel for c in await world.repo.cards(canary_id)] == ["web"]
    events = [r.event for r in await world.repo.audit_records(request_id=canary_id)]
    assert [e.event for e in events] == ["submitted", "routed", "posted"]
    assert events[1].data["canary"] is True and events[0].actor == "signoff"
    # Reviewers find it in their queue like any other item.
    assert canary_id in [r.id for r in await world.engine.pending_for("web:sam")]


async def test_an_approved_canary_is_never_delivered_and_counts_against_the_reviewer(
    world: World,
) -> None:
    await world.submit(confidence=0.3)
    [canary_id] = await canaries_of(world)

    decided = await world.engine.vote(canary_id, "web:sam", Verdict.APPROVE, channel="web")

    assert decided.status is Status.APPROVED
    webhooks = await world.repo.list_outbox(kind=OutboxKind.WEBHOOK)
    assert canary_id not in [m.request_id for m in webhooks]
    with pytest.raises(NotFound):
        await world.engine.get_for_agent("invoice-bot", canary_id)
    with pytest.raises(NotFound):
        await world.engine.cancel("invoice-bot", canary_id)
    page = await world.repo.list_requests(limit=50)
    figures = compute(page.items, [], now=world.clock.now(), tiers=["junior"], pending_by_tier={})
    [sam] = figures.reviewers
    assert (sam.canaries, sam.canaries_approved, sam.rubber_stamp) == (1, 1, True)
    assert figures.total == 1  # the agent's traffic: the real item only


async def test_canaries_follow_only_pending_items_at_chosen_tiers(world: World) -> None:
    assert world.engine.canaries is not None
    world.engine.canaries = CanaryPolicy(rate=1.0, tiers=frozenset({"manager"}))
    await world.submit(confidence=0.95)  # autonomous: nothing waits, nothing to hide among
    await world.submit(confidence=0.3)  # waits at senior: not a chosen tier
    assert await canaries_of(world) == []
    high = await world.submit(confidence=0.95, reversible=False)
    [canary_id] = await canaries_of(world)
    canary = await world.engine.get(canary_id)
    assert canary.tier == "manager" and canary.approvals_required == 2
    assert (await world.engine.get(high)).tier == "manager"


async def test_the_fraction_is_about_the_rate_and_the_same_on_every_replica() -> None:
    policy = CanaryPolicy(rate=0.1)
    sample = World(InMemoryRepository(), make_config(), ManualClock())
    ids = [await sample.submit(confidence=0.3) for _ in range(400)]
    requests = [await sample.engine.get(i) for i in ids]
    chosen = [r for r in requests if policy.follows(r)]
    assert 20 <= len(chosen) <= 60
    # Decided by the item's id alone: another replica (another policy object) agrees.
    assert chosen == [r for r in requests if CanaryPolicy(rate=0.1).follows(r)]
