"""People, not accounts, end to end across Teams and the web inbox (issue 14 section 2)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from bot.core.clock import ManualClock
from bot.server.app import build_services, create_app
from bot.server.config import parse_config
from bot.server.teams import mount_teams, teams_channel
from bot.server.web import web_inbox
from tests.conftest import RepoFactory
from tests.integration.test_teams import (
    KEY,
    REFUND,
    RULES,
    TIERS,
    Teams,
    banner,
    digest,
    serving,
)
from tests.integration.test_web_inbox import SECRET_ENV, csrf, hashes
from tests.support.fake_connector import FakeConnector
from tests.support.http_receiver import HttpReceiver
from tests.support.world import SECRET


@pytest.fixture(scope="module")
def connector_server() -> Iterator[FakeConnector]:
    with FakeConnector() as fake:
        yield fake


@pytest.fixture(scope="module")
def agent_server() -> Iterator[HttpReceiver]:
    with HttpReceiver() as receiver:
        yield receiver


@pytest.fixture
async def teams(
    repo_factory: RepoFactory, connector_server: FakeConnector, agent_server: HttpReceiver
) -> AsyncIterator[Teams]:
    connector_server.reset()
    agent_server.clear()
    junior = {**TIERS[0], "reviewers": [*TIERS[0]["reviewers"], "web:alice", "web:owner"]}
    config = parse_config(
        {
            "agents": [
                {
                    "id": "invoice-bot",
                    "key_sha256": digest(KEY),
                    "callback_url": f"{agent_server.url}/resume",
                    "webhook_secret_env": "INVOICE_SECRET",
                    "owner": "teams:aad-owner",
                }
            ],
            "routing": {"rules": RULES},
            "tiers": [junior, *TIERS[1:]],
            "teams": {"service_url": connector_server.service_url, "enabled": True, "auth": "none"},
            "web": {"reviewers": {"alice": hashes()["alice"], "owner": hashes()["owner"]}},
            "people": [
                {"id": "alice", "name": "Alice", "identities": ["teams:aad-alice", "web:alice"]},
                {"id": "owner", "identities": ["teams:aad-owner", "web:owner"]},
            ],
        },
        env={},
    )
    env = {"INVOICE_SECRET": SECRET}
    channel = teams_channel(config, env)
    assert channel is not None
    clock = ManualClock()
    svc = await build_services(
        config,
        repo=await repo_factory(),
        clock=clock,
        channels={"teams": channel},
        env=env,
        start_scheduler=False,
    )
    async with svc.stack:
        web_inbox(svc, env=SECRET_ENV)
        app = create_app(config, services=svc)
        mount_teams(app, svc, None, env)
        async with serving(app) as url, httpx.AsyncClient(base_url=url, timeout=10) as http:
            yield Teams(svc, channel, connector_server, agent_server, http, clock)


async def web_vote(teams: Teams, login: str, rid: str, **form: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=str(teams.http.base_url), timeout=10) as browser:
        page = await browser.get("/login")
        signed_in = await browser.post(
            "/login",
            data={
                "csrf": csrf(page.text),
                "username": login,
                "password": f"{login}-pw",
                "next": "/",
            },
        )
        assert signed_in.status_code == 303, signed_in.text
        item = await browser.get(f"/requests/{rid}")
        return await browser.post(f"/requests/{rid}/vote", data={"csrf": csrf(item.text), **form})


async def test_one_person_on_teams_and_web_is_one_approver(teams: Teams) -> None:
    rid = await teams.submit(REFUND, reversible=False)  # two approvals needed
    await teams.drain()
    _, card = await teams.click(rid, "approve", "alice")
    assert "(1 of 2)" in banner(card)

    refused = await web_vote(teams, "alice", rid, verdict="approve", rationale="")
    assert refused.status_code == 409
    assert "already voted as teams:aad-alice" in refused.text
    got: dict[str, Any] = await teams.request(rid)
    assert got["status"] == "pending" and len(got["votes"]) == 1
    assert got["votes"][0]["person"] == "alice"

    _, card = await teams.click(rid, "approve", "bob")
    assert (await teams.request(rid))["status"] == "approved"


async def test_the_owner_is_refused_on_the_web_too(teams: Teams) -> None:
    rid = await teams.submit(REFUND)
    await teams.drain()
    refused = await web_vote(teams, "owner", rid, verdict="approve", rationale="")
    assert refused.status_code in (403, 409)
    assert "you own agent invoice-bot" in refused.text
    assert (await teams.request(rid))["votes"] == []
