"""The stop button belongs to people (issue 14 section 1): an agent's key may stop its agent
but never start it, and a stop ends everything of the agent that waits for a verdict."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from adapters.slack.cards import card_message
from adapters.teams.cards import card as teams_card
from bot.core.clock import ManualClock
from bot.core.domain import OutboxKind, Status, Verdict
from bot.core.errors import NotAllowed
from bot.server.app import build_services, create_app
from bot.server.services import Services
from tests.conftest import RepoFactory
from tests.integration.test_http_api import BODY, KEY, config
from tests.support.world import World, make_config


@pytest.fixture
async def svc(repo_factory: RepoFactory) -> AsyncIterator[Services]:
    services = await build_services(config(), repo=await repo_factory(), start_scheduler=False)
    async with services.stack:
        yield services


@pytest.fixture
async def client(svc: Services) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(svc.config, services=svc)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://signoff",
        headers={"Authorization": f"Bearer {KEY}"},
    ) as c:
        yield c


async def test_an_agent_key_may_stop_but_never_start_its_agent(
    svc: Services, client: httpx.AsyncClient
) -> None:
    stopped = await client.post("/v1/agents/invoice-bot/stop", json={"reason": "runaway"})
    assert stopped.status_code == 200 and stopped.json()["stopped"] is True

    started = await client.post("/v1/agents/invoice-bot/start", json={"reason": "I am fine"})
    assert started.status_code == 403
    assert started.json()["error"] == "forbidden" and "start" in started.json()["detail"]
    state = await svc.repo.agent_state("invoice-bot")
    assert state is not None and state.stopped and state.reason == "runaway"
    # Still stopped: the next request is rejected, not approved autonomously.
    small = {**BODY, "amount": 1, "domain": "", "confidence": 0.99}
    assert (await client.post("/v1/requests", json=small)).json()["status"] == "rejected"
    events = [r.event.event for r in await svc.repo.audit_records()]
    assert "started" not in events


async def test_a_top_tier_reviewer_starts_the_agent_again(svc: Services) -> None:
    await svc.engine.set_stopped(
        "invoice-bot", True, actor="agent:invoice-bot", reason="runaway", channel="api"
    )
    with pytest.raises(NotAllowed):
        svc.engine.check_stop_authority("web:jan")
    svc.engine.check_stop_authority("web:max")
    state = await svc.engine.set_stopped(
        "invoice-bot", False, actor="web:max", reason="fixed", channel="web"
    )
    assert state.stopped is False and state.by == "web:max"


async def test_stopping_rejects_every_pending_request_and_tells_the_agent(
    svc: Services, client: httpx.AsyncClient
) -> None:
    first = (await client.post("/v1/requests", json=BODY)).json()["id"]
    second = (await client.post("/v1/requests", json={**BODY, "thread_id": "lg-43"})).json()["id"]
    assert (await client.post("/v1/agents/invoice-bot/stop", json={"reason": "loop"})).status_code

    for request_id in (first, second):
        got = (await client.get(f"/v1/requests/{request_id}")).json()
        assert got["status"] == "rejected" and "agent_stopped" in got["reasons"]
        assert got["decided_at"] is not None and got["deadline_at"] is None
    deliveries = (await client.get("/v1/deliveries")).json()["items"]
    resolved = {d["request_id"] for d in deliveries if d["type"] == "request.resolved"}
    assert resolved == {first, second}
    updates = await svc.repo.list_outbox(kind=OutboxKind.UPDATE_CARDS, limit=50)
    assert {m.request_id for m in updates} == {first, second}
    records = await svc.repo.audit_records()
    resolved_events = [r.event for r in records if r.event.event == "resolved"]
    assert {e.request_id for e in resolved_events} == {first, second}
    assert all(e.reason == "agent_stopped" for e in resolved_events)


async def test_a_vote_after_the_stop_is_refused_as_agent_stopped(
    svc: Services, client: httpx.AsyncClient
) -> None:
    rid = (await client.post("/v1/requests", json=BODY)).json()["id"]
    await client.post("/v1/agents/invoice-bot/stop", json={"reason": "loop"})
    with pytest.raises(NotAllowed) as refused:
        await svc.engine.vote(rid, "web:max", Verdict.APPROVE, channel="web", rationale="ok")
    assert refused.value.code == "agent_stopped"
    assert "agent stopped" in refused.value.message
    assert (await svc.repo.get(rid)).status is Status.REJECTED  # type: ignore[union-attr]


async def test_stopped_cards_lose_their_buttons_and_say_why(repo_factory: RepoFactory) -> None:
    clock = ManualClock()
    world = World(await repo_factory(), make_config(), clock)
    rid = await world.submit(confidence=0.2)
    await world.engine.set_stopped(
        "invoice-bot", True, actor="web:max", reason="looping", channel="web"
    )
    request = await world.engine.get(rid)
    view = world.engine.views.view(request, request.tier or "", "C0")
    slack = card_message(view)
    assert not [b for b in slack.blocks if b["type"] == "actions"]
    assert "agent was stopped" in str(slack.blocks)
    teams: Any = teams_card(view)
    assert "actions" not in teams
    assert "agent was stopped" in str(teams["body"])


async def test_the_sweep_rejects_what_a_stale_replica_let_in_after_the_stop(
    repo_factory: RepoFactory,
) -> None:
    from bot.core.domain import AgentState, Change

    clock = ManualClock()
    world = World(await repo_factory(), make_config(), clock)
    await world.engine.set_stopped(
        "invoice-bot", True, actor="web:max", reason="loop", channel="web"
    )
    # Another replica, its cached state still saying "running", stores a pending request.
    await world.repo.apply(
        Change(agent_state=AgentState("invoice-bot", False, "", "web:max", clock.now()))
    )
    world.engine.forget_agent_state("invoice-bot")
    late = await world.submit(confidence=0.2)
    await world.repo.apply(
        Change(agent_state=AgentState("invoice-bot", True, "loop", "web:max", clock.now()))
    )
    world.engine.forget_agent_state("invoice-bot")
    await world.engine.sweep()
    request = await world.engine.get(late)
    assert request.status is Status.REJECTED and request.ended_by_stop
