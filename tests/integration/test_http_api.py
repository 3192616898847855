"""The agent HTTP API of CONTRACT section 5, served by the real app."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from bot.core.domain import Verdict
from bot.engine.canaries import CanaryPolicy
from bot.server.app import build_services, create_app
from bot.server.config import parse_config
from bot.server.services import Services
from tests.conftest import RepoFactory
from tests.support.world import TIERS

KEY = "sk_test_invoice_bot"
OTHER_KEY = "sk_test_other_bot"


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def config() -> Any:
    return parse_config(
        {
            "agents": [
                {
                    "id": "invoice-bot",
                    "key_sha256": digest(KEY),
                    "callback_url": "http://127.0.0.1:9/resume",
                    "webhook_secret_env": "INVOICE_SECRET",
                },
                {"id": "other-bot", "key_sha256": digest(OTHER_KEY)},
            ],
            "tiers": TIERS,
        },
        env={},
    )


BODY: dict[str, Any] = {
    "thread_id": "lg-42",
    "action": {
        "kind": "payment",
        "summary": "Pay INV-123 to ACME",
        "payload": {"invoice": "INV-123"},
    },
    "confidence": 0.62,
    "amount": 5000,
    "currency": "USD",
    "domain": "financial",
    "requested_by": "slack:U0REQ",
    "context": {"summary": "ACME invoice", "recommendation": "pay"},
}


@pytest.fixture
async def svc(repo_factory: RepoFactory) -> AsyncIterator[Services]:
    services = await build_services(config(), repo=await repo_factory(), start_scheduler=False)
    services.wait_poll_interval = 0.1
    async with services.stack:
        yield services


@pytest.fixture
async def client(svc: Services) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(svc.config, services=svc)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://signoff", headers={"Authorization": f"Bearer {KEY}"}
    ) as c:
        yield c


async def test_submit_answers_with_the_contract_shape(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/requests", json=BODY)
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {
        "id",
        "status",
        "lane",
        "risk",
        "reasons",
        "tier",
        "approvals_required",
        "created_at",
        "review",
    }
    assert body["id"].startswith("req_")
    assert body["status"] == "pending" and body["lane"] == "escalate" and body["risk"] == "high"
    assert body["reasons"] == ["high_value_transaction", "regulated_domain"]
    assert body["tier"] == "manager" and body["review"] == "none"
    assert body["created_at"].endswith("Z")
    got = (await client.get(f"/v1/requests/{body['id']}")).json()
    assert got["status"] == "pending" and got["votes"] == [] and got["decided_at"] is None
    assert got["history"][0]["to"] == "manager"


async def test_auth_is_required_and_scoped_to_the_agent(client: httpx.AsyncClient) -> None:
    created = (await client.post("/v1/requests", json=BODY)).json()
    no_key = await client.post("/v1/requests", json=BODY, headers={"Authorization": ""})
    assert no_key.status_code == 401 and no_key.json()["error"] == "unauthorized"
    bad_key = await client.get("/v1/requests", headers={"Authorization": "Bearer sk_nope"})
    assert bad_key.status_code == 401
    other = await client.get(
        f"/v1/requests/{created['id']}", headers={"Authorization": f"Bearer {OTHER_KEY}"}
    )
    assert other.status_code == 404 and other.json()["error"] == "not_found"
    cancel = await client.post(
        f"/v1/requests/{created['id']}/cancel", headers={"Authorization": f"Bearer {OTHER_KEY}"}
    )
    assert cancel.status_code == 404


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({**BODY, "confidence": 1.5}, ["body", "confidence"]),
        ({**BODY, "confidence": "high"}, ["body", "confidence"]),
        ({k: v for k, v in BODY.items() if k != "action"}, ["body", "action"]),
        ({**BODY, "action": {"kind": "payment"}}, ["body", "action", "summary"]),
        ({**BODY, "surprise": 1}, ["body", "surprise"]),
        ({**BODY, "reversible": "maybe"}, ["body", "reversible"]),
    ],
)
async def test_invalid_bodies_get_422_naming_the_field(
    client: httpx.AsyncClient, body: dict[str, Any], where: list[str]
) -> None:
    response = await client.post("/v1/requests", json=body)
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_body"
    assert where in [e["loc"] for e in response.json()["detail"]]
    listed = (await client.get("/v1/requests")).json()
    assert listed["items"] == []


@pytest.mark.parametrize(
    "raw",
    [
        b'{"action": {"kind": "k\\u0000", "summary": "s"}, "confidence": 0.5}',
        b'{"action": {"kind": "k", "summary": "\\ud800"}, "confidence": 0.5}',
        b'{"action": {"kind": "k", "summary": "s"}, "confidence": 0.5, "labels": {"\\u0000": 1}}',
    ],
)
async def test_unstorable_text_is_422(client: httpx.AsyncClient, raw: bytes) -> None:
    response = await client.post(
        "/v1/requests", content=raw, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert (await client.get("/v1/requests")).json()["items"] == []


async def test_malformed_json_is_422_and_stores_nothing(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/requests", content=b'{"action": ', headers={"content-type": "application/json"}
    )
    assert response.status_code == 422 and response.json()["error"] == "invalid_body"
    assert (await client.get("/v1/requests")).json()["items"] == []


async def test_every_error_has_a_code_and_a_detail(client: httpx.AsyncClient) -> None:
    """Whatever goes wrong, an agent reads `error` (a code to branch on) and `detail`."""
    answers = [
        await client.get("/v1/requests", params={"limit": "many"}),
        await client.get("/v1/requests/req_missing/wait", params={"timeout": "soon"}),
        await client.post("/v1/requests/req_missing/outcome", json={"correct": "perhaps"}),
        await client.get("/v1/nowhere"),
        await client.delete("/v1/requests"),
        await client.get("/v1/requests/req_missing"),
        await client.post("/v1/requests", json=BODY, headers={"Authorization": ""}),
    ]
    shapes = [(a.status_code, set(a.json()), a.json()["error"]) for a in answers]
    assert shapes == [
        (422, {"error", "detail"}, "invalid_body"),
        (422, {"error", "detail"}, "invalid_body"),
        (422, {"error", "detail"}, "invalid_body"),
        (404, {"error", "detail"}, "not_found"),
        (405, {"error", "detail"}, "method_not_allowed"),
        (404, {"error", "detail"}, "not_found"),
        (401, {"error", "detail"}, "unauthorized"),
    ]
    assert answers[0].json()["detail"][0]["loc"] == ["query", "limit"]
    assert answers[4].headers["allow"]  # a 405 still says which methods would do


async def test_bodies_over_256_kib_get_413(client: httpx.AsyncClient) -> None:
    big = {**BODY, "context": {"summary": "x" * (300 * 1024)}}
    response = await client.post("/v1/requests", json=big)
    assert response.status_code == 413 and response.json()["error"] == "payload_too_large"

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(300):
            yield b" " * 1024

    streamed = await client.post(
        "/v1/requests", content=chunks(), headers={"content-type": "application/json"}
    )
    assert streamed.status_code == 413
    assert (await client.get("/v1/requests")).json()["items"] == []


@pytest.mark.parametrize(
    "url",
    [
        "ftp://127.0.0.1:9/resume",
        "http://evil.example.com/resume",
        "http://127.0.0.1:10/resume",
        "nonsense",
    ],
)
async def test_callback_urls_outside_the_prefixes_are_refused(
    client: httpx.AsyncClient, url: str
) -> None:
    response = await client.post("/v1/requests", json={**BODY, "callback_url": url})
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_callback_url"
    assert (await client.get("/v1/requests")).json()["items"] == []


async def test_idempotency_key_replays_and_conflicts(client: httpx.AsyncClient) -> None:
    first = await client.post("/v1/requests", json=BODY, headers={"Idempotency-Key": "abc"})
    same = await client.post(
        "/v1/requests",
        json=dict(reversed(list(BODY.items()))),  # same body, other key order
        headers={"Idempotency-Key": "abc"},
    )
    assert first.status_code == 201 and same.status_code == 200
    assert same.json() == first.json()
    other = await client.post(
        "/v1/requests", json={**BODY, "amount": 1}, headers={"Idempotency-Key": "abc"}
    )
    assert other.status_code == 409 and other.json()["error"] == "idempotency_key_reused"
    assert len((await client.get("/v1/requests")).json()["items"]) == 1


async def test_long_poll_wakes_on_the_verdict(client: httpx.AsyncClient, svc: Services) -> None:
    rid = (await client.post("/v1/requests", json=BODY)).json()["id"]
    quick = await client.get(f"/v1/requests/{rid}/wait", params={"timeout": 0.2})
    assert quick.status_code == 200 and quick.json()["status"] == "pending"

    async def decide_later() -> None:
        await asyncio.sleep(0.3)
        await svc.engine.vote(rid, "web:max", Verdict.APPROVE, channel="web", rationale="ok")

    waiter = asyncio.create_task(client.get(f"/v1/requests/{rid}/wait", params={"timeout": 10}))
    await decide_later()
    done = await waiter
    assert done.status_code == 200 and done.json()["status"] == "approved"
    assert done.json()["votes"][0]["rationale"] == "ok"


async def test_list_filters_and_paginates(client: httpx.AsyncClient) -> None:
    ids = [
        (await client.post("/v1/requests", json={**BODY, "thread_id": f"t{i}"})).json()["id"]
        for i in range(5)
    ]
    await client.post(f"/v1/requests/{ids[0]}/cancel")
    page1 = (await client.get("/v1/requests", params={"status": "pending", "limit": 2})).json()
    assert [r["id"] for r in page1["items"]] == ids[1:3]
    page2 = (
        await client.get(
            "/v1/requests", params={"status": "pending", "limit": 2, "cursor": page1["next_cursor"]}
        )
    ).json()
    assert [r["id"] for r in page2["items"]] == ids[3:5]
    assert page2["next_cursor"] is None
    bad = await client.get("/v1/requests", params={"status": "bogus"})
    assert bad.status_code == 422


async def test_cancel_outcome_stop_and_start(svc: Services, client: httpx.AsyncClient) -> None:
    rid = (await client.post("/v1/requests", json=BODY)).json()["id"]
    assert (await client.post(f"/v1/requests/{rid}/cancel")).json()["status"] == "cancelled"
    again = await client.post(f"/v1/requests/{rid}/cancel")
    assert again.status_code == 409 and again.json()["error"] == "not_pending"
    outcome = await client.post(f"/v1/requests/{rid}/outcome", json={"correct": False, "note": "x"})
    assert outcome.status_code == 200 and outcome.json()["outcome"]["correct"] is False

    stopped = await client.post("/v1/agents/invoice-bot/stop", json={"reason": "runaway"})
    assert stopped.status_code == 200 and stopped.json()["stopped"] is True
    refused = (await client.post("/v1/requests", json={**BODY, "confidence": 0.99})).json()
    assert refused["status"] == "rejected" and refused["reasons"] == ["agent_stopped"]
    assert (await client.post("/v1/agents/other-bot/stop", json={"reason": "x"})).status_code == 404
    # The agent's own key may not lift its stop; a top-tier reviewer does.
    assert (await client.post("/v1/agents/invoice-bot/start", json={})).status_code == 403
    await svc.engine.set_stopped(
        "invoice-bot", False, actor="web:max", reason="fixed", channel="web"
    )
    small = {**BODY, "amount": 1, "domain": "", "confidence": 0.99}
    assert (await client.post("/v1/requests", json=small)).json()["status"] == "approved"


async def test_deliveries_list_and_retry(client: httpx.AsyncClient) -> None:
    listed = await client.get("/v1/deliveries", params={"status": "dead"})
    assert listed.status_code == 200 and listed.json() == {"items": []}
    missing = await client.post("/v1/deliveries/msg_nope/retry")
    assert missing.status_code == 404
    rid = (await client.post("/v1/requests", json=BODY)).json()["id"]
    await client.post(f"/v1/requests/{rid}/cancel")
    [pending] = (await client.get("/v1/deliveries")).json()["items"]
    assert pending["status"] == "pending" and pending["type"] == "request.resolved"
    not_dead = await client.post(f"/v1/deliveries/{pending['id']}/retry")
    assert not_dead.status_code == 409


async def test_health_ready_and_metrics(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    assert (await client.get("/readyz")).status_code == 200
    await client.post("/v1/requests", json=BODY)
    text = (await client.get("/metrics")).text
    for name in [
        'signoff_requests_total{lane="escalate",risk="high"} 1.0',
        'signoff_pending_requests{tier="manager"} 1.0',
        "signoff_dead_deliveries 0.0",
        "signoff_time_to_escalate_seconds_bucket",
        "signoff_time_to_decision_seconds_bucket",
        'signoff_warning_signs{sign="rubber_stamp"} 0.0',
        "# TYPE signoff_card_update_failures_total counter",
    ]:
        assert name in text, name


async def test_database_down_answers_503_and_readyz_fails() -> None:
    from storage import SqlRepository

    repo = SqlRepository.connect("postgresql+psycopg://postgres@127.0.0.1:1/test")
    services = await build_services(config(), repo=repo, start_scheduler=False)
    async with services.stack:
        app = create_app(services.config, services=services)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://signoff",
            headers={"Authorization": f"Bearer {KEY}"},
        ) as c:
            assert (await c.get("/healthz")).status_code == 200
            ready = await c.get("/readyz")
            assert ready.status_code == 503
            submit = await c.post("/v1/requests", json=BODY, headers={"Idempotency-Key": "k"})
            assert submit.status_code == 503 and submit.json()["error"] == "unavailable"
            assert submit.headers["retry-after"] == "1"
    await repo.close()


async def test_attention_checks_stay_out_of_the_agent_api(
    svc: Services, client: httpx.AsyncClient
) -> None:
    svc.engine.canaries = CanaryPolicy(rate=1.0)
    body = {"action": {"kind": "invoice", "summary": "Pay INV-9"}, "confidence": 0.3}
    real = (await client.post("/v1/requests", json=body)).json()["id"]
    stored = await svc.repo.list_requests(limit=10)
    [canary] = [r.id for r in stored.items if r.canary]

    listed = (await client.get("/v1/requests")).json()["items"]

    assert [item["id"] for item in listed] == [real]
    assert (await client.get(f"/v1/requests/{canary}")).status_code == 404
    assert (await client.post(f"/v1/requests/{canary}/cancel")).status_code == 404


async def test_an_unexpected_failure_is_a_json_error_too() -> None:
    from fastapi import FastAPI

    from bot.server.http import install_error_handlers

    app = FastAPI()
    install_error_handlers(app)

    @app.get("/v1/boom")
    async def boom() -> None:
        raise RuntimeError("a bug")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://signoff") as client:
        answer = await client.get("/v1/boom")
    assert answer.status_code == 500
    assert answer.json()["error"] == "internal_error" and "a bug" not in answer.text


async def test_an_agent_key_reads_only_its_own_agent(client: httpx.AsyncClient) -> None:
    own = await client.get("/v1/agents/invoice-bot")
    assert own.status_code == 200
    assert own.json() == {"agent_id": "invoice-bot", "stopped": False, "reason": ""}
    other = await client.get("/v1/agents/other-bot")
    assert other.status_code == 404 and other.json()["error"] == "not_found"
    await client.post("/v1/agents/invoice-bot/stop", json={"reason": "runaway"})
    assert (await client.get("/v1/agents/invoice-bot")).json()["stopped"] is True
