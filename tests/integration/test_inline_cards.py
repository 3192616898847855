"""Web inbox cards posted inside the state change's transaction, and the cached stop state."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import pytest

from bot.core.clock import ManualClock
from bot.core.domain import AgentState, OutboxKind, Status, verify_chain
from bot.core.views import CardView
from bot.oversight import figures as oversight
from signoff_client.submission import Submission
from tests.conftest import RepoFactory
from tests.support.world import TIERS, World, make_config, new_request


class RecordingChannel:
    """A chat channel with a remote side effect: its cards must still go through the outbox."""

    name = "slack"

    def __init__(self) -> None:
        self.posted: list[tuple[str, str]] = []

    async def post_card(self, view: CardView) -> Mapping[str, Any]:
        self.posted.append((view.request.id, view.tier))
        return {"channel": view.target, "ts": f"{len(self.posted)}.0001"}

    async def update_card(self, ref: Mapping[str, Any], view: CardView) -> None:
        return None

    async def remind(self, ref: Mapping[str, Any], view: CardView) -> None:
        return None


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


async def events(world: World, request_id: str) -> list[str]:
    return [r.event.event for r in await world.repo.audit_records(request_id=request_id)]


async def test_a_web_card_is_posted_in_the_submit_transaction(
    repo_factory: RepoFactory, clock: ManualClock
) -> None:
    world = World(await repo_factory(), make_config(), clock, inline_web=True)
    rid = await world.submit(confidence=0.3)
    # Nothing for a worker to do: the card, its event and the metric are there already.
    assert await world.repo.list_outbox(kind=OutboxKind.POST_CARD) == []
    [card] = await world.repo.cards(rid)
    assert (card.channel, card.tier) == ("web", "senior")
    assert card.ref == {"target": "senior", "url": f"http://127.0.0.1:8000/requests/{rid}"}
    assert await events(world, rid) == ["submitted", "routed", "posted"]
    [posted] = [
        r for r in await world.repo.audit_records(request_id=rid) if r.event.event == "posted"
    ]
    assert posted.event.channel == "web"
    assert dict(posted.event.data) == {"tier": "senior", "target": "senior", "measured": True}
    assert _observations(world) == 1
    assert [r.id for r in await world.engine.pending_for("web:sam")] == [rid]
    chain = verify_chain(await world.repo.audit_records(), await world.repo.audit_head())
    assert chain.ok, chain.problem


async def test_an_escalation_posts_the_next_tier_web_card_in_its_transaction(
    repo_factory: RepoFactory, clock: ManualClock
) -> None:
    world = World(await repo_factory(), make_config(), clock, inline_web=True)
    rid = await world.submit(confidence=0.3)
    clock.advance(timedelta(hours=1, seconds=1))
    assert await world.engine.sweep() == 1
    cards = await world.repo.cards(rid)
    assert [(c.channel, c.tier) for c in cards] == [("web", "senior"), ("web", "manager")]
    assert await events(world, rid) == ["submitted", "routed", "posted", "escalated", "posted"]
    # The old card's refresh still goes through the outbox; no card post does.
    assert await world.repo.list_outbox(kind=OutboxKind.POST_CARD) == []
    assert len(await world.repo.list_outbox(kind=OutboxKind.UPDATE_CARDS)) == 1
    assert _observations(world) == 1  # time to escalate counts the first tier only
    assert [r.id for r in await world.engine.pending_for("web:max")] == [rid]


async def test_chat_cards_still_go_through_the_outbox(
    repo_factory: RepoFactory, clock: ManualClock
) -> None:
    tiers = [dict(TIERS[0]), dict(TIERS[1], slack_channel="C0SENIOR"), dict(TIERS[2])]
    slack = RecordingChannel()
    world = World(
        await repo_factory(),
        make_config(tiers=tiers),
        clock,
        channels={"slack": slack},
        inline_web=True,
    )
    rid = await world.submit(confidence=0.3)
    [message] = await world.repo.list_outbox(kind=OutboxKind.POST_CARD)
    # Senior's reviewers are all in the web inbox: the Slack copy does not measure
    # time-to-escalate (bot.escalation).
    assert dict(message.payload) == {
        "channel": "slack",
        "target": "C0SENIOR",
        "tier": "senior",
        "measured": False,
    }
    assert [c.channel for c in await world.repo.cards(rid)] == ["web"]
    assert await world.worker.drain() == 1
    assert slack.posted == [(rid, "senior")]
    assert [c.channel for c in await world.repo.cards(rid)] == ["web", "slack"]
    assert await events(world, rid) == ["submitted", "routed", "posted", "posted"]
    assert _observations(world) == 1 and _observations(world, "slack") == 0


@pytest.mark.parametrize(
    ("reviewers", "measured", "seconds"),
    [
        # Slack reviewers: the Slack post is measured (4 s late), the instant web row
        # also has reviewers, and the slowest copy is the request's time to escalate.
        (["slack:U0SAM", "web:sam"], {"web": 1, "slack": 1}, 4.0),
        (["slack:U0SAM"], {"slack": 1}, 4.0),
        # Only web reviewers: the web row is measured; the Slack copy is a courtesy.
        (["web:sam"], {"web": 1}, 0.0),
    ],
)
async def test_time_to_escalate_measures_the_channels_with_reviewers_of_the_tier(
    repo_factory: RepoFactory,
    clock: ManualClock,
    reviewers: list[str],
    measured: dict[str, int],
    seconds: float,
) -> None:
    tiers = [dict(TIERS[0]), dict(TIERS[1], slack_channel="C0SENIOR", reviewers=reviewers)]
    tiers.append(dict(TIERS[2]))
    slack = RecordingChannel()
    world = World(
        await repo_factory(),
        make_config(tiers=tiers),
        clock,
        channels={"slack": slack},
        inline_web=True,
    )
    await world.submit(confidence=0.3)  # medium risk: senior
    clock.advance(timedelta(seconds=4))  # the Slack card goes out 4 s after the submit
    assert await world.worker.drain() == 1
    for channel in ("web", "slack"):
        assert _observations(world, channel) == measured.get(channel, 0), channel
    figures = oversight.compute(
        [], await world.repo.audit_records(), now=clock.now(), tiers=["senior"], pending_by_tier={}
    )
    assert figures.time_to_escalate_p95 == seconds


async def test_a_decided_request_gets_no_card(
    repo_factory: RepoFactory, clock: ManualClock
) -> None:
    world = World(await repo_factory(), make_config(), clock, inline_web=True)
    rid = await world.submit(confidence=0.95)
    assert await world.repo.cards(rid) == []
    assert "posted" not in await events(world, rid)


def _observations(world: World, channel: str | None = None) -> int:
    """How many times time-to-escalate was observed (in `channel`, or in any)."""
    return sum(
        int(sample.value)
        for metric in world.metrics.time_to_escalate.collect()
        for sample in metric.samples
        if sample.name.endswith("_count")
        and (channel is None or sample.labels.get("channel") == channel)
    )


# -- the stop state, cached per replica ------------------------------------------------------


class Ticks:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_a_stop_elsewhere_is_seen_once_invalidated_or_after_the_ttl(
    repo_factory: RepoFactory, clock: ManualClock
) -> None:
    repo = await repo_factory()
    here, there = World(repo, make_config(), clock), World(repo, make_config(), clock)
    ticks = Ticks()
    there.engine._monotonic = ticks
    assert (await there.engine.submit("invoice-bot", _low())).response["status"] == "pending"

    await here.engine.set_stopped("invoice-bot", True, actor="web:max", reason="x", channel="web")
    # `there` still trusts its copy (no notification reached it, the TTL has not passed) ...
    assert (await there.engine.submit("invoice-bot", _low())).response["status"] == "pending"
    # ... until the notification drops it,
    there.engine.forget_agent_state("invoice-bot")
    assert (await there.engine.submit("invoice-bot", _low())).response["reasons"] == [
        "agent_stopped"
    ]
    # and a lost notification costs at most the TTL.
    await here.engine.set_stopped("invoice-bot", False, actor="web:max", reason="", channel="web")
    assert (await there.engine.submit("invoice-bot", _low())).response["status"] == "rejected"
    ticks.now += there.engine.agent_state_ttl
    assert (await there.engine.submit("invoice-bot", _low())).response["status"] == "pending"


async def test_the_replica_that_stops_an_agent_rejects_at_once(
    repo_factory: RepoFactory, clock: ManualClock
) -> None:
    world = World(await repo_factory(), make_config(), clock)
    world.engine.agent_state_ttl = 3600
    assert (await world.engine.submit("invoice-bot", _low())).response["status"] == "pending"
    await world.engine.set_stopped("invoice-bot", True, actor="web:max", reason="x", channel="web")
    result = await world.engine.submit("invoice-bot", _low())
    assert Status(result.response["status"]) is Status.REJECTED


def _low() -> Submission:
    return new_request(confidence=0.3)


async def test_concurrent_submits_share_one_read_of_the_stop_state(
    repo_factory: RepoFactory, clock: ManualClock
) -> None:
    world = World(await repo_factory(), make_config(), clock)
    reads = 0
    read = world.repo.agent_state

    async def counted(agent_id: str) -> AgentState | None:
        nonlocal reads
        reads += 1
        await asyncio.sleep(0.01)
        return await read(agent_id)

    world.repo.agent_state = counted  # type: ignore[method-assign]
    await asyncio.gather(*(world.engine.submit("invoice-bot", _low()) for _ in range(10)))
    assert reads == 1
