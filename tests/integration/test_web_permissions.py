"""Permissions that match responsibility (issue 14 section 5): only the top tier re-sends
dead deliveries from the web inbox, a delivery the agent retired (410) needs an explicit
confirmation, and batch endpoints do not exist while batch review is off."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from bot.core.clock import ManualClock
from bot.core.domain import OutboxKind, OutboxResult, OutboxStatus
from bot.server.app import build_services
from bot.server.services import Services
from tests.conftest import RepoFactory
from tests.integration.test_web_inbox import (
    KEY,
    LOW,
    as_reviewer,
    config,
    csrf,
    make_app,
    submit,
    vote,
)


@pytest.fixture
def backend() -> str:
    return "sqlite"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def svc(repo_factory: RepoFactory, clock: ManualClock) -> AsyncIterator[Services]:
    services = await build_services(
        config(), repo=await repo_factory(), clock=clock, start_scheduler=False
    )
    async with services.stack:
        yield services


@pytest.fixture
def app(svc: Services) -> Any:
    return make_app(svc)


@pytest.fixture
async def agent(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://signoff",
        headers={"Authorization": f"Bearer {KEY}"},
    ) as client:
        yield client


async def dead_delivery(
    svc: Services, clock: ManualClock, agent: httpx.AsyncClient, app: Any, error: str
) -> str:
    rid = await submit(agent, LOW)
    async with as_reviewer(app, "alice") as alice:
        await vote(alice, rid, "reject", "no")
    claimed = await svc.repo.claim_outbox("test", clock.now(), timedelta(minutes=1), 50)
    [message] = [m for m in claimed if m.kind is OutboxKind.WEBHOOK and m.request_id == rid]
    await svc.repo.finish_outbox(message.id, "test", OutboxResult(OutboxStatus.DEAD, error=error))
    return message.id


async def status_of(svc: Services, delivery_id: str) -> OutboxStatus:
    message = await svc.repo.get_outbox(delivery_id)
    assert message is not None
    return message.status


async def test_only_the_top_tier_resends_dead_deliveries_from_the_inbox(
    svc: Services, clock: ManualClock, agent: httpx.AsyncClient, app: Any
) -> None:
    dead = await dead_delivery(svc, clock, agent, app, "HTTP 500")
    async with as_reviewer(app, "jan") as jan:  # junior
        page = await jan.get("/dashboard")
        refused = await jan.post(f"/deliveries/{dead}/retry", data={"csrf": csrf(page.text)})
        assert refused.status_code == 403
        assert "manager" in refused.text
    assert await status_of(svc, dead) is OutboxStatus.DEAD
    # The agent may still re-send its own delivery through the API.
    again = await agent.post(f"/v1/deliveries/{dead}/retry")
    assert again.status_code == 200 and again.json()["status"] == "pending"


async def test_a_delivery_that_ended_with_410_needs_a_confirmation(
    svc: Services, clock: ManualClock, agent: httpx.AsyncClient, app: Any
) -> None:
    dead = await dead_delivery(svc, clock, agent, app, "HTTP 410: the agent retired this URL")
    async with as_reviewer(app, "alice") as alice:
        page = await alice.get("/dashboard")
        asked = await alice.post(f"/deliveries/{dead}/retry", data={"csrf": csrf(page.text)})
        assert asked.status_code == 409
        assert "410" in asked.text and 'name="confirm"' in asked.text
        assert await status_of(svc, dead) is OutboxStatus.DEAD
        confirmed = await alice.post(
            f"/deliveries/{dead}/retry", data={"csrf": csrf(asked.text), "confirm": "gone"}
        )
        assert confirmed.status_code == 303 and "flash=retried" in confirmed.headers["location"]
    assert await status_of(svc, dead) is OutboxStatus.PENDING


async def test_batch_endpoints_are_404_while_batch_review_is_off(app: Any) -> None:
    async with as_reviewer(app, "alice") as alice:
        page = await alice.get("/")
        response = await alice.post(
            "/batch", data={"csrf": csrf(page.text), "verdict": "approve", "pick_req_x": "1"}
        )
        assert response.status_code == 404
