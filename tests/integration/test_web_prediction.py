"""Shadow mode in the web inbox: the score is shown, high scores flagged "likely to need you"."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from bot.core.clock import ManualClock
from bot.core.domain import AuditEvent
from bot.oversight.predict import train
from bot.server.app import build_services
from bot.server.config import parse_config
from bot.server.services import Services
from tests.conftest import RepoFactory
from tests.integration.test_web_inbox import KEY, TIERS, as_reviewer, hashes, make_app
from tests.support.synthetic import history

NIGHT = datetime(2026, 6, 1, 2, 30, tzinfo=UTC)


@pytest.fixture
def backend() -> str:
    return "sqlite"


@asynccontextmanager
async def services_with_model(repo_factory: RepoFactory, mode: str) -> AsyncIterator[Services]:
    """Signoff with a trained model active and `prediction.mode` set to `mode`."""
    config = parse_config(
        {
            "agents": [
                {"id": "support-bot", "key_sha256": hashlib.sha256(KEY.encode()).hexdigest()}
            ],
            "tiers": TIERS,
            "web": {"reviewers": hashes()},
            "prediction": {"mode": mode, "threshold": 0.7},
        },
        env={},
    )
    repo = await repo_factory()
    event = AuditEvent(event="model_trained", at=NIGHT, actor="cli", channel="cli")
    stored = await repo.add_model(train(history()).as_model(NIGHT, "cli"), event)
    await repo.activate_model(stored.version, NIGHT, event)
    services = await build_services(
        config, repo=repo, clock=ManualClock(NIGHT), start_scheduler=False
    )
    async with services.stack:
        yield services


@pytest.fixture
async def svc(repo_factory: RepoFactory) -> AsyncIterator[Services]:
    async with services_with_model(repo_factory, "shadow") as services:
        yield services


def refund(tier: str) -> dict[str, Any]:
    return {
        "action": {"kind": "refund", "summary": "refund for order 77", "payload": {"order": 77}},
        "confidence": 0.75,  # review lane (no rule): proceeds, queued for review
        "amount": 40,
        "labels": {"customer_tier": tier, "customer_id": "c7"},
    }


async def test_shadow_scores_are_shown_and_high_ones_flagged(svc: Services) -> None:
    assert svc.model.version == 1
    app = make_app(svc)
    headers = {"Authorization": f"Bearer {KEY}"}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://s", headers=headers) as a:
        risky = (await a.post("/v1/requests", json=refund("new"))).json()
        calm = (await a.post("/v1/requests", json=refund("gold"))).json()
    # Shadow: both proceed exactly as without a model.
    assert risky["status"] == calm["status"] == "approved"
    assert risky["lane"] == calm["lane"] == "review"
    stored = await svc.engine.get(risky["id"])
    assert stored.predicted_escalation is not None and stored.predicted_escalation > 0.7
    async with as_reviewer(app, "jan") as jan:
        inbox = (await jan.get("/")).text
        rows = inbox.split('data-request-id="')
        flagged = [row for row in rows if "likely to need you" in row]
        assert [row.split('"')[0] for row in flagged] == [risky["id"]]
        page = (await jan.get(f"/requests/{risky['id']}")).text
        assert "predicted escalation" in page and "likely to need you" in page
        quiet = (await jan.get(f"/requests/{calm['id']}")).text
        assert "predicted escalation" in quiet and "likely to need you" not in quiet


@pytest.fixture
async def active(repo_factory: RepoFactory) -> AsyncIterator[Services]:
    async with services_with_model(repo_factory, "active") as services:
        yield services


async def test_active_mode_escalates_through_the_api(active: Services) -> None:
    app = make_app(active)
    headers = {"Authorization": f"Bearer {KEY}"}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://s", headers=headers) as a:
        risky = (await a.post("/v1/requests", json=refund("new"))).json()
        calm = (await a.post("/v1/requests", json=refund("gold"))).json()
    assert risky["status"] == "pending" and risky["reasons"] == ["predicted_escalation"]
    assert risky["lane"] == "escalate" and risky["tier"] == "senior"
    assert calm["status"] == "approved" and calm["lane"] == "review"
    async with as_reviewer(app, "alice") as alice:  # a manager: acts on senior items
        page = (await alice.get(f"/requests/{risky['id']}")).text
        assert "Likely to need a person" in page and "likely to need you" in page
