"""The MCP gateway and approval tools in one process: Signoff's app (SQLite) over httpx's
ASGI transport, the example's payments server and the gateway connected in memory with the
official MCP client, a reviewer voting through the web inbox's forms. The same behaviour
runs across real processes in tests/e2e/test_mcp.py."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import Client, types
from mcp.shared.exceptions import MCPError

from adapters.web.passwords import hash_password
from bot.server.app import build_services, create_app
from bot.server.config import parse_config
from bot.server.services import Services
from bot.server.web import mount_web, web_inbox
from examples.mcp_gateway.upstream import build_server
from signoff_client import AsyncSignoffClient
from signoff_client.mcp import Gateway, GatewayOptions, approval_server
from tests.conftest import RepoFactory
from tests.support.mcp import csrf, paid

KEY = "sk_test_mcp_inprocess"
SECRET_ENV = {"SIGNOFF_SESSION_SECRET": "test-session-secret-0123456789"}


@pytest.fixture
def backend() -> str:
    return "sqlite"


@pytest.fixture
async def svc(repo_factory: RepoFactory) -> AsyncIterator[Services]:
    config = parse_config(
        {
            "agents": [{"id": "mcp-agent", "key_sha256": hashlib.sha256(KEY.encode()).hexdigest()}],
            "routing": {
                "rules": [
                    {"name": "mcp_payment", "when": 'action.kind == "mcp:pay"'},
                    {
                        "name": "mcp_large_payment",
                        "when": 'action.kind == "mcp:pay" && double(action.payload.amount) > 500.0',
                        "risk": "high",
                    },
                ]
            },
            "tiers": [{"name": "junior", "sla": "1h", "reviewers": ["web:alice"]}],
            "web": {"reviewers": {"alice": {"password_hash": hash_password("pw"), "name": "Al"}}},
        },
        env={},
    )
    services = await build_services(config, repo=await repo_factory(), start_scheduler=False)
    async with services.stack:
        yield services


@pytest.fixture
def app(svc: Services) -> Any:
    web_inbox(svc, env=SECRET_ENV)
    app = create_app(svc.config, services=svc)
    if not any(getattr(r, "path", None) == "/dashboard" for r in app.routes):
        mount_web(app, svc)
    return app


@pytest.fixture
async def signoff(app: Any) -> AsyncIterator[AsyncSignoffClient]:
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app))
    async with http, AsyncSignoffClient("http://signoff", KEY, http=http) as client:
        yield client


class Alice:
    def __init__(self, app: Any) -> None:
        self.web = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://s")

    async def vote(self, rid: str, verdict: str, rationale: str, **fields: str) -> None:
        if "signoff_session" not in str(self.web.cookies):
            page = await self.web.get("/login")
            data = {"csrf": csrf(page.text), "username": "alice", "password": "pw", "next": "/"}
            assert (await self.web.post("/login", data=data)).status_code == 303
        page = await self.web.get(f"/requests/{rid}")
        data = {"csrf": csrf(page.text), "verdict": verdict, "rationale": rationale, **fields}
        assert (await self.web.post(f"/requests/{rid}/vote", data=data)).status_code == 303


@asynccontextmanager
async def gateway(
    signoff: AsyncSignoffClient, book: Path, **options: Any
) -> AsyncIterator[tuple[Client, Gateway]]:
    async with Client(build_server(book)) as upstream:
        gate = Gateway(signoff, upstream.session, GatewayOptions(agent="mcp-agent", **options))
        async with Client(gate.server()) as client:
            yield client, gate


async def pending(signoff: AsyncSignoffClient, svc: Services) -> str:
    for _ in range(200):
        page = await svc.repo.list_requests(agent_id="mcp-agent", status=None, limit=200)
        waiting = [r.id for r in page.items if r.status.value == "pending"]
        if waiting:
            return waiting[-1]
        await asyncio.sleep(0.05)
    raise AssertionError("no pending request")


def text(result: types.CallToolResult) -> str:
    return " ".join(c.text for c in result.content if isinstance(c, types.TextContent))


async def test_gateway_routes_each_call(
    signoff: AsyncSignoffClient, svc: Services, app: Any, tmp_path: Path
) -> None:
    book, alice = tmp_path / "ledger.jsonl", Alice(app)
    async with gateway(signoff, book, poll=0.2) as (client, gate):
        listed = await client.list_tools()
        assert {t.name for t in listed.tools} == {"get_balance", "pay"}
        balance = await client.call_tool("get_balance", {"account": "ACC-2"})
        assert balance.structured_content == {
            "account": "ACC-2",
            "balance": 80.0,
            "currency": "EUR",
        }

        seen: list[str | None] = []

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            seen.append(message)

        for verdict, fields, invoice in [
            ("approve", {}, "INV-A"),
            (
                "modify",
                {"modified_payload": json.dumps({"invoice": "INV-M", "amount": 5, "to": "Z"})},
                "INV-M",
            ),
            ("reject", {}, "INV-R"),
        ]:
            call = asyncio.create_task(
                client.call_tool(
                    "pay",
                    {"invoice": invoice, "amount": 9, "to": "Z"},
                    progress_callback=on_progress,
                )
            )
            rid = await pending(signoff, svc)
            await asyncio.sleep(0.5)  # a few progress notifications while it waits
            assert not call.done()
            await alice.vote(rid, verdict, f"{verdict} because", **fields)
            result = await asyncio.wait_for(call, 10)
            if verdict == "reject":
                assert result.is_error and "reject because" in text(result) and rid in text(result)
            else:
                assert not result.is_error, text(result)
        assert [(p["invoice"], p["amount"]) for p in paid(book)] == [("INV-A", 9), ("INV-M", 5)]
        assert any("waiting for a reviewer" in (m or "") for m in seen)
        assert any("held for approval" in (m or "") for m in seen)

        with pytest.raises(MCPError, match="unknown tool"):
            await client.call_tool("nope", {})

    page = await svc.repo.list_requests(agent_id="mcp-agent", status=None, limit=200)
    assert {r.thread_id for r in page.items} == {gate.thread_id}
    assert [r.action.kind for r in page.items] == ["mcp:get_balance", *["mcp:pay"] * 3]


async def test_gateway_wait_limit_withdraws(
    signoff: AsyncSignoffClient, svc: Services, tmp_path: Path
) -> None:
    book = tmp_path / "ledger.jsonl"
    async with gateway(signoff, book, poll=0.2, wait_timeout=0.5, confidence=0.3) as (client, _):
        result = await client.call_tool("pay", {"invoice": "INV-T", "amount": 900, "to": "Z"})
    assert result.is_error and "wait limit (0.5 s)" in text(result)
    assert paid(book) == []
    page = await svc.repo.list_requests(agent_id="mcp-agent", status=None, limit=10)
    assert [(r.status.value, r.confidence) for r in page.items] == [("cancelled", 0.3)]
    # The policy saw the call's arguments as the payload, like any request's.
    assert page.items[0].reasons == ("mcp_payment", "mcp_large_payment")


async def test_approval_tools(signoff: AsyncSignoffClient, svc: Services, app: Any) -> None:
    async with Client(approval_server(signoff, agent="mcp-agent")) as client:
        quick = await client.call_tool(
            "request_approval",
            {"action": {"kind": "lookup", "summary": "Read"}, "confidence": 0.99, "amount": 1},
        )
        assert quick.structured_content is not None
        assert quick.structured_content["verdict"]["rationale"] == "approved by policy: autonomous"

        held = await client.call_tool(
            "request_approval",
            {
                "action": {"kind": "mcp:pay", "summary": "Pay", "payload": {"n": 1}},
                "confidence": 0.99,
            },
        )
        assert held.structured_content is not None
        rid = held.structured_content["id"]
        waited = await client.call_tool(
            "wait_for_approval", {"request_id": rid, "timeout_seconds": 0.3}
        )
        assert waited.structured_content is not None and waited.structured_content["final"] is False
        await Alice(app).vote(rid, "reject", "not today")
        final = await client.call_tool("wait_for_approval", {"request_id": rid})
        verdict = final.structured_content
        assert verdict is not None
        assert (verdict["status"], verdict["proceed"]) == ("rejected", False)
        assert verdict["rationale"] == "Al: not today"
        bad = await client.call_tool(
            "request_approval", {"action": {"kind": "x", "summary": "y"}, "confidence": 2}
        )
        assert bad.is_error
        gone = await client.call_tool("wait_for_approval", {"request_id": "req_nope"})
        assert gone.is_error and "req_nope" in text(gone)
