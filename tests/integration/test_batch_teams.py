"""Batch review in Microsoft Teams end to end: `Action.Execute` invokes over real HTTP with
`Input.Toggle` values merged into the data, and the fake Bot Connector holding the cards."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest

from bot.core.clock import ManualClock
from bot.core.ports import Repository
from bot.server.app import build_services, create_app
from bot.server.config import parse_config
from bot.server.teams import mount_teams, teams_channel
from tests.conftest import RepoFactory
from tests.integration.test_teams import (
    ALICE,
    BOB,
    JUNIOR,
    KEY,
    OWNER,
    TIERS,
    Teams,
    digest,
    serving,
)
from tests.support.fake_connector import FakeConnector
from tests.support.http_receiver import HttpReceiver
from tests.support.world import SECRET
from tests.unit.teams.schema import assert_adaptive_card

RULES = [
    {"name": "refund", "when": 'action.kind == "refund"', "risk": "low"},
    {"name": "big", "when": 'action.kind == "refund" && amount > 500.0', "risk": "high"},
    {"name": "dual_control", "when": "has(labels.dual)", "risk": "low", "approvals": 2},
]
_n = itertools.count(1)


def refund(**changes: Any) -> dict[str, Any]:
    n = next(_n)
    body = {
        "action": {"kind": "refund", "summary": f"Refund order {n}", "payload": {"order": n}},
        "confidence": 0.9,
        "amount": 40,
        "currency": "EUR",
    }
    return {**body, **changes}


@asynccontextmanager
async def running(
    repo: Repository, connector: FakeConnector, agent: HttpReceiver
) -> AsyncIterator[Teams]:
    env = {"INVOICE_SECRET": SECRET}
    config = parse_config(
        {
            "public_url": "http://signoff.test",
            "agents": [
                {
                    "id": "invoice-bot",
                    "key_sha256": digest(KEY),
                    "callback_url": f"{agent.url}/resume",
                    "webhook_secret_env": "INVOICE_SECRET",
                    "owner": f"teams:aad-{OWNER}",
                }
            ],
            "routing": {"rules": RULES},
            "tiers": TIERS,
            "teams": {"service_url": connector.service_url, "enabled": True, "auth": "none"},
            "batch": {"min_items": 3},
        },
        env={},
    )
    channel = teams_channel(config, env)
    assert channel is not None
    clock = ManualClock()
    svc = await build_services(
        config, repo=repo, clock=clock, channels={"teams": channel}, env=env, start_scheduler=False
    )
    async with svc.stack:
        app = create_app(config, services=svc)
        mount_teams(app, svc, None, env)
        async with serving(app) as url, httpx.AsyncClient(base_url=url, timeout=10) as http:
            yield Teams(svc, channel, connector, agent, http, clock)


@pytest.fixture(scope="module")
def connector_server() -> Any:
    with FakeConnector() as fake:
        yield fake


@pytest.fixture(scope="module")
def agent_server() -> Any:
    with HttpReceiver() as receiver:
        yield receiver


@pytest.fixture
async def teams(
    repo_factory: RepoFactory, connector_server: FakeConnector, agent_server: HttpReceiver
) -> AsyncIterator[Teams]:
    connector_server.reset()
    agent_server.clear()
    async with running(await repo_factory(), connector_server, agent_server) as world:
        yield world


async def submit(teams: Teams, body: dict[str, Any]) -> str:
    teams.clock.advance(timedelta(seconds=1))  # "oldest first" needs distinct times
    return await teams.submit(body)


async def plan(teams: Teams) -> int:
    planner = teams.svc.planner
    assert planner is not None
    changed = await planner.plan()
    await teams.drain()
    return changed


def batch_threads(teams: Teams) -> list[str]:
    return [
        c.conversation_id
        for c in teams.connector.created
        if c.card is not None and "batch_approve" in str(c.card)
    ]


def toggles(card: dict[str, Any]) -> list[str]:
    found: list[str] = []
    stack: list[Any] = [card]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if node.get("type") == "Input.Toggle":
                found.append(str(node["id"]).removeprefix("pick:"))
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(reversed(node))
    return found


def batch_id_of(card: dict[str, Any]) -> str:
    return str(card["actions"][0]["data"]["batch_id"])


def banner_text(card: dict[str, Any]) -> str:
    return str(card["body"][1]["items"][0]["inlines"][0]["text"])


async def click(
    teams: Teams, verb: str, user: str, thread: str, picked: list[str], **inputs: Any
) -> dict[str, Any]:
    card = teams.connector.card(thread)
    data: dict[str, Any] = {"batch_id": batch_id_of(card)}
    data.update({f"pick:{rid}": "false" for rid in toggles(card)})
    data.update({f"pick:{rid}": "true" for rid in picked})
    response = await teams.post(
        teams.invoke("", verb, user, data=data, conversation=thread, inputs=inputs)
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["statusCode"] == 200
    assert_adaptive_card(body["value"])
    value: dict[str, Any] = body["value"]
    return value


async def test_batch_card_votes_per_item_and_closes_when_all_are_decided(teams: Teams) -> None:
    eligible = [await submit(teams, refund()) for _ in range(2)]
    high = await submit(teams, refund(amount=900))
    two = await submit(teams, refund(labels={"dual": True}))
    await teams.drain()
    assert await plan(teams) == 0 and batch_threads(teams) == []

    eligible.append(await submit(teams, refund()))
    await teams.drain()
    assert await plan(teams) == 1
    [thread] = batch_threads(teams)
    assert thread.startswith(JUNIOR)
    card = teams.connector.card(thread)
    assert_adaptive_card(card)
    assert toggles(card) == eligible

    answer = await click(teams, "batch_approve", ALICE, thread, [*eligible[:2], high, two])

    assert "Recorded: 2 items approved" in banner_text(answer)
    assert "high-risk items are decided one by one" in banner_text(answer)
    assert "two-person items are decided one by one" in banner_text(answer)
    assert toggles(answer) == [eligible[2]]
    for rid in eligible[:2]:
        got = await teams.request(rid)
        assert got["status"] == "approved" and got["votes"][0]["channel"] == "teams"
        records = await teams.svc.repo.audit_records(request_id=rid)
        [voted] = [r.event for r in records if r.event.event == "voted"]
        assert voted.data["batch"] == batch_id_of(card)
    for rid in (high, two):
        got = await teams.request(rid)
        assert got["status"] == "pending" and got["votes"] == []
    await teams.drain()
    assert toggles(teams.connector.card(thread)) == [eligible[2]]  # edited for everyone
    hooks = await teams.agent.wait_for(2, path="/resume")
    assert len(hooks) == 2

    refused = await click(teams, "batch_reject", BOB, thread, [eligible[2]])
    assert "rationale is required" in banner_text(refused)
    assert (await teams.request(eligible[2]))["votes"] == []
    done = await click(
        teams, "batch_reject", BOB, thread, [eligible[2]], rationale="Already refunded"
    )
    assert "Recorded: 1 item rejected" in banner_text(done)
    got = await teams.request(eligible[2])
    assert got["status"] == "rejected" and got["votes"][0]["rationale"] == "Already refunded"

    assert await plan(teams) == 1
    closed = teams.connector.card(thread)
    assert_adaptive_card(closed)
    assert "actions" not in closed and toggles(closed) == []
    assert "All refund items at junior decided" in str(closed["body"][0])
    # The batch card stands alone in its message: no text for Teams to split off, so every
    # edit of it was accepted.
    [created] = [c for c in teams.connector.created if c.conversation_id == thread]
    assert "text" not in created.activity
    assert teams.connector.refused == []
    assert all("text" not in u.activity for u in teams.connector.updates)
