"""A request's `cost` through the agent API: stored, returned, and strictly a number."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.integration import test_http_api as api

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
