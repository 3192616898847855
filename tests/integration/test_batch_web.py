"""Batch review in the web inbox: the group on the page, its CSRF-protected form, and
per-item results, as a browser without JavaScript uses them."""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from bot.core.clock import ManualClock
from bot.server.app import build_services
from bot.server.config import parse_config
from bot.server.services import Services
from tests.conftest import RepoFactory
from tests.integration.test_web_inbox import (
    KEY,
    as_reviewer,
    csrf,
    hashes,
    make_app,
)

RULES = [
    {"name": "big_invoice", "when": 'action.kind == "invoice" && amount > 500.0', "risk": "high"},
    {"name": "dual_control", "when": "has(labels.dual)", "risk": "medium", "approvals": 2},
]
TIERS = [
    {"name": "junior", "sla": "15m", "reviewers": ["web:jan"]},
    {"name": "manager", "sla": "4h", "reviewers": ["web:alice", "web:bob", "web:owner"]},
]
_n = itertools.count(1)


@pytest.fixture
def backend() -> str:
    return "sqlite"


@pytest.fixture
async def svc(repo_factory: RepoFactory) -> AsyncIterator[Services]:
    config = parse_config(
        {
            "agents": [
                {
                    "id": "invoice-bot",
                    "key_sha256": hashlib.sha256(KEY.encode()).hexdigest(),
                    "owner": "web:owner",
                }
            ],
            "routing": {
                "rules": RULES,
                "start_tier": {"low": "manager", "medium": "manager", "high": "manager"},
            },
            "tiers": TIERS,
            "web": {"reviewers": hashes()},
            "batch": {"min_items": 3},
        },
        env={},
    )
    services = await build_services(
        config, repo=await repo_factory(), clock=ManualClock(), start_scheduler=False
    )
    async with services.stack:
        yield services


@pytest.fixture
def app(svc: Services) -> Any:
    return make_app(svc)


async def submit(svc: Services, app: Any, **changes: Any) -> str:
    n = next(_n)
    body = {
        "action": {"kind": "invoice", "summary": f"File INV-{n}", "payload": {"n": n}},
        "confidence": 0.3,
        "amount": 80,
        **changes,
    }
    svc.clock.advance(timedelta(seconds=1))  # type: ignore[attr-defined]
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://signoff",
        headers={"Authorization": f"Bearer {KEY}"},
    ) as agent:
        response = await agent.post("/v1/requests", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def picks(html: str) -> list[str]:
    return re.findall(r'data-batch-pick="([^"]+)"', html)


def results(html: str) -> dict[str, str]:
    return dict(re.findall(r'data-batch-result="([^"]+)" data-recorded="(yes|no)"', html))


async def decide(
    client: httpx.AsyncClient, ids: list[str], verdict: str, rationale: str = ""
) -> httpx.Response:
    page = await client.get("/")
    form = {"csrf": csrf(page.text), "tier": "manager", "verdict": verdict, "rationale": rationale}
    form.update({f"pick_{rid}": "1" for rid in ids})
    return await client.post("/batch", data=form)


async def test_inbox_groups_eligible_items_and_decides_them_per_item(
    svc: Services, app: Any
) -> None:
    eligible = [await submit(svc, app) for _ in range(2)]
    high = await submit(svc, app, amount=900)
    two = await submit(svc, app, labels={"dual": True})
    async with as_reviewer(app, "alice") as alice:
        assert picks((await alice.get("/")).text) == []  # two eligible: below the threshold

        eligible.append(await submit(svc, app))
        page = await alice.get("/")
        assert picks(page.text) == eligible
        assert "3 invoice items waiting at manager" in page.text

        forged = await alice.post("/batch", data={"verdict": "approve", f"pick_{eligible[0]}": "1"})
        assert forged.status_code == 403  # no CSRF token: nothing recorded
        assert (await svc.engine.get(eligible[0])).votes == ()

        approved = await decide(alice, [*eligible[:2], high, two], "approve")
        assert approved.status_code == 200
        got = results(approved.text)
        assert got == {eligible[0]: "yes", eligible[1]: "yes", high: "no", two: "no"}
        assert "high-risk items are decided one by one" in approved.text
        assert "two-person items are decided one by one" in approved.text
        for rid in eligible[:2]:
            request = await svc.engine.get(rid)
            assert request.status.value == "approved" and request.votes[0].channel == "web"
            records = await svc.repo.audit_records(request_id=rid)
            [voted] = [r.event for r in records if r.event.event == "voted"]
            assert voted.data["batch"] == "inbox"
        for rid in (high, two):
            assert (await svc.engine.get(rid)).votes == ()
        assert picks(approved.text) == []  # one eligible item left: below the threshold

    for _ in range(2):
        eligible.append(await submit(svc, app))
    async with as_reviewer(app, "bob") as bob:
        assert picks((await bob.get("/")).text) == eligible[2:]
        missing = await decide(bob, eligible[2:4], "reject")
        assert missing.status_code == 422 and "rationale is required" in missing.text
        assert (await svc.engine.get(eligible[2])).votes == ()

        rejected = await decide(bob, eligible[2:4], "reject", "Duplicates")
        assert results(rejected.text) == {eligible[2]: "yes", eligible[3]: "yes"}
        request = await svc.engine.get(eligible[2])
        assert request.status.value == "rejected" and request.votes[0].rationale == "Duplicates"
