"""A request's `cost` through the agent API: stored, returned, and strictly a number."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest

from bot.core.clock import ManualClock
from bot.core.domain import Verdict
from bot.server.app import build_services, create_app
from bot.server.config import parse_config
from tests.conftest import RepoFactory
from tests.integration import test_http_api as api
from tests.support.world import TIERS, new_request

# The agent API suite's fixtures: a service on each backend and an authenticated client.
svc, client = api.svc, api.client

BODY: dict[str, Any] = {
    "action": {"kind": "invoice", "summary": "File INV-1", "payload": {}},
    "confidence": 0.95,
    "currency": "EUR",
}


async def test_cost_is_stored_and_returned(client: httpx.AsyncClient) -> None:
    created = await client.post("/v1/requests", json={**BODY, "cost": 0.042})
    assert created.status_code == 201, created.text
    shown = (await client.get(f"/v1/requests/{created.json()['id']}")).json()
    assert shown["cost"] == 0.042
    plain = await client.post("/v1/requests", json=BODY)
    assert (await client.get(f"/v1/requests/{plain.json()['id']}")).json()["cost"] is None


@pytest.mark.parametrize("cost", [True, "0.5", -1, None])
async def test_cost_must_be_a_number_of_zero_or_more(client: httpx.AsyncClient, cost: Any) -> None:
    response = await client.post("/v1/requests", json={**BODY, "cost": cost})
    if cost is None:
        assert response.status_code == 201
        return
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"][:2] == ["body", "cost"]


async def test_metrics_show_cost_per_resolution(repo_factory: RepoFactory) -> None:
    data = {
        "agents": [{"id": "invoice-bot", "key_sha256": api.digest(api.KEY)}],
        "tiers": TIERS,
        "oversight": {"reviewer_hourly_cost": {"junior": 60, "senior": 120, "manager": 200}},
    }
    clock = ManualClock()
    services = await build_services(
        parse_config(data, env={}), repo=await repo_factory(), clock=clock, start_scheduler=False
    )
    async with services.stack:
        engine = services.engine
        await engine.submit("invoice-bot", new_request(confidence=0.95, cost=0.25))
        low = await engine.submit("invoice-bot", new_request(confidence=0.3, cost=0.75))
        clock.advance(timedelta(minutes=30))  # low confidence starts at senior: 30 min = 60.00
        await engine.vote(str(low.response["id"]), "web:sam", Verdict.APPROVE, channel="web")
        await services.measure_cost()
        app = create_app(services.config, services=services)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://s") as http:
            metrics = (await http.get("/metrics")).text
    assert 'signoff_cost_per_resolution{lane="escalate"} 60.75' in metrics
    assert 'signoff_cost_per_resolution{lane="autonomous"} 0.25' in metrics
    assert 'signoff_reviewer_hours_per_resolution{lane="escalate"} 0.5' in metrics
    assert "signoff_standing_reviewer_hours_saved 0.0" in metrics
