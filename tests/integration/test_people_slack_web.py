"""People, not accounts, end to end across Slack and the web inbox (issue 14 section 2): one
person's Slack account and web login are one reviewer for the two-person rule."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook

from bot.core.clock import ManualClock
from bot.server.app import build_services, create_app
from bot.server.config import LoadedConfig, parse_config
from bot.server.slack import mount_slack, slack_channel
from bot.server.web import web_inbox
from tests.conftest import RepoFactory
from tests.integration.test_slack import (
    ENV,
    KEY,
    TWO_PERSON,
    AppServer,
    VirtualTime,
    World,
    ephemerals,
)
from tests.integration.test_web_inbox import SECRET_ENV, csrf, hashes
from tests.support.fake_slack import FakeSlack
from tests.support.world import SECRET as WEBHOOK_SECRET

PEOPLE = [{"id": "ops-lead", "name": "Operations lead", "identities": ["slack:U0DDD", "web:alice"]}]


def config(slack: FakeSlack) -> LoadedConfig:
    return parse_config(
        {
            "public_url": "http://signoff.test",
            "agents": [
                {
                    "id": "invoice-bot",
                    "key_sha256": hashlib.sha256(KEY.encode()).hexdigest(),
                    "callback_url": f"{slack.rx.url}/resume",
                    "webhook_secret_env": "AGENT_WEBHOOK_SECRET",
                    "owner": "web:owner",
                }
            ],
            "tiers": [
                {
                    "name": "manager",
                    "sla": "4h",
                    "slack_channel": "C0MGR",
                    "reviewers": ["slack:U0DDD", "slack:U0EEE", "slack:U0REQ", "web:alice"],
                }
            ],
            "slack": {"api_url": slack.api_url},
            "web": {"reviewers": {"alice": hashes()["alice"], "owner": hashes()["owner"]}},
            "people": [
                *PEOPLE,
                {"id": "rita", "identities": ["slack:U0REQ", "web:rita"]},
                {"id": "owen", "identities": ["web:owner", "slack:U0EEE"]},
            ],
        },
        env={},
    )


@pytest.fixture
async def w(repo_factory: RepoFactory, slack: FakeSlack) -> AsyncIterator[World]:
    clock = ManualClock()
    loaded = config(slack)
    channel = slack_channel(loaded, ENV)
    assert channel is not None
    svc = await build_services(
        loaded,
        repo=await repo_factory(),
        clock=clock,
        channels={"slack": channel},
        env=ENV,
        start_scheduler=False,
    )
    web_inbox(svc, env=SECRET_ENV)
    app = create_app(loaded, services=svc)
    mount_slack(app, svc, channel, ENV)
    server = AppServer(app)
    await server.start()
    http = httpx.AsyncClient(
        base_url=server.url, timeout=10, limits=httpx.Limits(max_keepalive_connections=0)
    )
    world = World(slack, slack.rx, svc, app, server, http, clock, VirtualTime(clock))
    try:
        yield world
    finally:
        await world.close()


async def web_vote(w: World, login: str, password: str, rid: str, **form: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=w.server.url, timeout=10) as browser:
        page = await browser.get("/login")
        signed_in = await browser.post(
            "/login",
            data={"csrf": csrf(page.text), "username": login, "password": password, "next": "/"},
        )
        assert signed_in.status_code == 303, signed_in.text
        item = await browser.get(f"/requests/{rid}")
        return await browser.post(f"/requests/{rid}/vote", data={"csrf": csrf(item.text), **form})


async def test_one_person_on_web_and_slack_is_one_approver(w: World) -> None:
    rid = await w.submit(TWO_PERSON)
    await w.drain()
    done = await web_vote(w, "alice", "alice-pw", rid, verdict="approve", rationale="IBAN ok")
    assert done.status_code == 303, done.text

    # The same person through Slack: refused, nothing recorded, no modal opened.
    await w.click("U0DDD", "signoff_approve", rid)
    await w.settle()
    [told] = ephemerals(w, "U0DDD")
    assert "already voted as web:alice" in told.args["text"].lower()
    assert w.slack.calls("views.open") == []
    got = await w.get(rid)
    assert got["status"] == "pending" and len(got["votes"]) == 1

    # The owner's Slack account is the owner too; the requester's likewise.
    await w.click("U0EEE", "signoff_approve", rid)
    await w.settle()
    assert "you own agent" in ephemerals(w, "U0EEE")[0].args["text"].lower()
    assert (await w.get(rid))["status"] == "pending"


async def test_a_requester_cannot_approve_through_another_platform(w: World) -> None:
    rid = await w.submit({**TWO_PERSON, "requested_by": "web:rita"})
    await w.drain()
    await w.click("U0REQ", "signoff_approve", rid)
    await w.settle()
    [told] = ephemerals(w, "U0REQ")
    assert "you requested this action" in told.args["text"].lower()
    assert (await w.get(rid))["votes"] == []


async def test_votes_carry_the_person_in_the_api_and_the_webhook(w: World) -> None:
    rid = await w.submit({**TWO_PERSON, "reversible": True, "amount": 1, "confidence": 0.3})
    await w.drain()
    done = await web_vote(w, "alice", "alice-pw", rid, verdict="approve", rationale="ok")
    assert done.status_code == 303, done.text
    got = await w.get(rid)
    assert got["status"] == "approved"
    assert [(v["reviewer"], v["person"]) for v in got["votes"]] == [("web:alice", "ops-lead")]
    await w.drain()
    [hit] = await w.agent.wait_for(1, path="/resume")
    body: dict[str, Any] = Webhook(WEBHOOK_SECRET).verify(hit.body, hit.headers)
    assert [v["person"] for v in body["data"]["votes"]] == ["ops-lead"]
