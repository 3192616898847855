"""MCP both ways against a real `signoff serve`, spoken to with the official MCP client.

The gateway (`signoff mcp gateway`) stands in front of a real upstream MCP server run by
the test (examples/mcp_gateway/upstream.py: a payments API that notes every payment it
makes in a ledger), reached over stdio and over streamable HTTP. Reviewers answer in the
web inbox through its forms. The approval tools (`signoff mcp serve`) are checked over
stdio and streamable HTTP.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import types
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from adapters.web.passwords import hash_password
from tests.e2e.serve import SIGNOFF, Server, run, serve
from tests.support.http_receiver import free_port
from tests.support.mcp import (
    ROOT,
    UPSTREAM,
    Reviewer,
    agent_env,
    http_process,
    ledger,
    mcp_process,
    paid,
    pending_request,
    upstream_session,
)
from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.slow

KEY = "sk_test_mcp_agent_0123456789"
AGENT = "mcp-agent"
CONFIG = """
agents:
  - id: mcp-agent
    key_sha256: {key_sha256}
routing:
  rules:
    - name: mcp_payment
      when: 'action.kind == "mcp:pay"'
      risk: low
tiers:
  - {{name: junior, sla: 1h, reviewers: [web:alice]}}
web:
  reviewers:
    alice: {{password_hash: "{alice}", name: Alice}}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("signoff")
    config = home / "signoff.yaml"
    config.write_text(
        CONFIG.format(
            key_sha256=hashlib.sha256(KEY.encode()).hexdigest(), alice=hash_password("alice-pw")
        ),
        encoding="utf-8",
    )
    port = free_port()
    env = {
        "SIGNOFF_DATABASE_URL": f"sqlite:///{home / 'signoff.db'}",
        "SIGNOFF_PUBLIC_URL": f"http://127.0.0.1:{port}",
    }
    with serve(home, config=config, env=env, port=port) as running:
        running.config = config  # type: ignore[attr-defined]
        running.env = env  # type: ignore[attr-defined]
        yield running


@pytest.fixture
async def alice(server: Server) -> AsyncIterator[Reviewer]:
    reviewer = Reviewer(server.url)
    await reviewer.sign_in("alice", "alice-pw")
    yield reviewer
    await reviewer.aclose()


def gateway_args(upstream: list[str], *more: str) -> list[str]:
    return ["mcp", "gateway", *upstream, "--agent", AGENT, *more]


def text_of(result: types.CallToolResult) -> str:
    return "\n".join(c.text for c in result.content if isinstance(c, types.TextContent))


async def api(server: Server, path: str) -> Any:
    async with httpx.AsyncClient(
        base_url=server.url, headers={"authorization": f"Bearer {KEY}"}
    ) as client:
        return (await client.get(path)).json()


async def held_call(
    session: ClientSession, server: Server, tool: str, arguments: dict[str, Any]
) -> tuple[asyncio.Task[types.CallToolResult], str, list[str | None]]:
    """Start a call the policy holds; return it running, its request id and its progress."""
    seen: list[str | None] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append(message)

    call = asyncio.create_task(session.call_tool(tool, arguments, progress_callback=on_progress))
    rid = await pending_request(server.url, KEY, f"mcp:{tool}", arguments)
    await asyncio.sleep(0.5)
    assert not call.done(), "a held call must stay open until the verdict"
    return call, rid, seen


# -- the gateway, upstream over stdio -------------------------------------------------------


async def test_gateway_over_stdio_upstream(server: Server, alice: Reviewer, tmp_path: Path) -> None:
    book = tmp_path / "ledger.jsonl"
    upstream = ["--upstream", f"{UPSTREAM} --ledger {book}"]
    env = agent_env(server.url, KEY, SIGNOFF_EXTRA_SECRET="must-not-leak")
    async with mcp_process(gateway_args(upstream), env) as session:
        # Tools as the upstream declares them, schemas untouched.
        listed = await session.list_tools()
        direct_book = tmp_path / "direct.jsonl"
        async with upstream_session(direct_book) as direct:
            declared = await direct.list_tools()
            expected_balance = await direct.call_tool("get_balance", {"account": "ACC-1"})
        assert [t.model_dump() for t in listed.tools] == [t.model_dump() for t in declared.tools]
        assert {t.name for t in listed.tools} == {"get_balance", "pay"}

        # Autonomous: forwarded at once, the result whole (content and structuredContent).
        balance = await session.call_tool("get_balance", {"account": "ACC-1"})
        assert not balance.is_error
        assert balance.structured_content == expected_balance.structured_content
        assert balance.structured_content == {
            "account": "ACC-1",
            "balance": 12500.0,
            "currency": "EUR",
        }
        assert balance.content == expected_balance.content

        # Held, then approved in the web inbox: executed with the arguments as asked.
        asked = {"invoice": "INV-1", "amount": 120.0, "to": "Paper Co"}
        call, approved_id, progress = await held_call(session, server, "pay", asked)
        assert paid(book) == []
        await alice.vote(approved_id, "approve", "matches the order")
        result = await asyncio.wait_for(call, 30)
        assert not result.is_error, text_of(result)
        assert result.structured_content is not None
        assert result.structured_content["invoice"] == "INV-1"
        assert [(p["invoice"], p["amount"]) for p in paid(book)] == [("INV-1", 120.0)]
        assert progress and approved_id in (progress[0] or "")

        # Modified: executed with the reviewer's arguments, not the agent's.
        asked = {"invoice": "INV-2", "amount": 950.0, "to": "ACME"}
        call, modified_id, _ = await held_call(session, server, "pay", asked)
        edited = {"invoice": "INV-2", "amount": 900.0, "to": "ACME"}
        await alice.vote(
            modified_id, "modify", "the order says 900", modified_payload=json.dumps(edited)
        )
        result = await asyncio.wait_for(call, 30)
        assert not result.is_error, text_of(result)
        assert result.structured_content is not None
        assert result.structured_content["amount"] == 900.0
        assert [(p["invoice"], p["amount"]) for p in paid(book)][-1] == ("INV-2", 900.0)

        # Rejected: a tool error with the rationale; the upstream is never called.
        asked = {"invoice": "INV-3", "amount": 40.0, "to": "Mallory"}
        call, rejected_id, _ = await held_call(session, server, "pay", asked)
        await alice.vote(rejected_id, "reject", "unknown payee")
        result = await asyncio.wait_for(call, 30)
        assert result.is_error
        assert "unknown payee" in text_of(result) and rejected_id in text_of(result)
        assert "rejected" in text_of(result)
        assert [p["invoice"] for p in paid(book)] == ["INV-1", "INV-2"]

    # The upstream saw none of the gateway's SIGNOFF_* variables.
    started = [e for e in ledger(book) if e["event"] == "started"]
    assert started == [{"event": "started", "signoff_variables": []}]

    # Every call is Signoff's: requests with kind mcp:<tool>, payload = arguments, one
    # thread for the connection, confidence 1.0, and the audit log has each of them.
    mine = [
        r
        for r in (await api(server, "/v1/requests?limit=200"))["items"]
        if r["thread_id"] == (await api(server, f"/v1/requests/{approved_id}"))["thread_id"]
    ]
    assert [r["action"]["kind"] for r in mine] == [
        "mcp:get_balance",
        "mcp:pay",
        "mcp:pay",
        "mcp:pay",
    ]
    assert mine[0]["lane"] == "autonomous" and mine[0]["status"] == "approved"
    assert mine[0]["action"]["payload"] == {"account": "ACC-1"}
    assert "get_balance" in mine[0]["action"]["summary"]
    assert "ACC-1" in mine[0]["action"]["summary"]
    assert {r["confidence"] for r in mine} == {1.0}
    assert [r["status"] for r in mine[1:]] == ["approved", "modified", "rejected"]
    exported = run("audit", "export", "--config", str(server.config), cwd=ROOT, env=server.env)  # type: ignore[attr-defined]
    assert exported.returncode == 0, exported.stderr
    events = [json.loads(line) for line in exported.stdout.splitlines()]
    for request in mine:
        kinds = {e["event"] for e in events if e["request_id"] == request["id"]}
        assert {"submitted", "routed"} <= kinds, (request["id"], kinds)
    assert {"voted"} <= {e["event"] for e in events if e["request_id"] == rejected_id}


# -- the gateway, upstream over streamable HTTP ---------------------------------------------


@pytest.fixture
def http_upstream(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    book = tmp_path / "http-ledger.jsonl"
    port = free_port()
    with http_process([*UPSTREAM.split(), "--ledger", str(book), "--http", str(port)], port) as url:
        yield url, book


@pytest.fixture
def http_tools(server: Server) -> Iterator[str]:
    port = free_port()
    args = [SIGNOFF, "mcp", "serve", "--http", str(port), "--agent", AGENT]
    with http_process(args, port, env=agent_env(server.url, KEY)) as url:
        yield url


async def test_gateway_over_streamable_http_upstream(
    server: Server, alice: Reviewer, http_upstream: tuple[str, Path]
) -> None:
    url, book = http_upstream
    env = agent_env(server.url, KEY)
    async with mcp_process(gateway_args(["--upstream-url", url]), env) as session:
        assert {t.name for t in (await session.list_tools()).tools} == {"get_balance", "pay"}
        balance = await session.call_tool("get_balance", {"account": "ACC-2"})
        assert balance.structured_content == {
            "account": "ACC-2",
            "balance": 80.0,
            "currency": "EUR",
        }

        asked = {"invoice": "INV-H1", "amount": 10.0, "to": "Paper Co"}
        call, rid, _ = await held_call(session, server, "pay", asked)
        assert paid(book) == []
        await alice.vote(rid, "approve", "fine")
        result = await asyncio.wait_for(call, 30)
        assert not result.is_error, text_of(result)
        assert [p["invoice"] for p in paid(book)] == ["INV-H1"]


async def test_gateway_wait_timeout_withdraws_and_never_forwards(
    server: Server, tmp_path: Path
) -> None:
    book = tmp_path / "ledger.jsonl"
    upstream = ["--upstream", f"{UPSTREAM} --ledger {book}"]
    args = gateway_args(upstream, "--wait-timeout", "2s", "--confidence", "0.9")
    async with mcp_process(args, agent_env(server.url, KEY)) as session:
        result = await session.call_tool("pay", {"invoice": "INV-T", "amount": 5.0, "to": "X"})
    assert result.is_error
    assert "wait limit" in text_of(result)
    assert paid(book) == []
    items = (await api(server, "/v1/requests?limit=200"))["items"]
    timed_out = [r for r in items if r["action"]["payload"].get("invoice") == "INV-T"]
    assert [(r["status"], r["confidence"]) for r in timed_out] == [("cancelled", 0.9)]


async def test_unknown_tool_is_a_protocol_error_and_asks_nobody(
    server: Server, tmp_path: Path
) -> None:
    upstream = ["--upstream", f"{UPSTREAM} --ledger {tmp_path / 'l.jsonl'}"]
    before = len((await api(server, "/v1/requests?limit=200"))["items"])
    async with mcp_process(gateway_args(upstream), agent_env(server.url, KEY)) as session:
        with pytest.raises(Exception, match="unknown tool"):
            await session.call_tool("transfer_everything", {})
    assert len((await api(server, "/v1/requests?limit=200"))["items"]) == before


# -- refusals at start ----------------------------------------------------------------------


@pytest.mark.parametrize("command", [["serve", "--stdio"], ["gateway", "--upstream", "true"]])
def test_agent_must_be_the_keys_agent(server: Server, command: list[str]) -> None:
    done = subprocess.run(
        [SIGNOFF, "mcp", *command, "--agent", "other"],
        env=agent_env(server.url, KEY),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "belongs to another agent" in done.stderr and "'other'" in done.stderr
    bad_key = subprocess.run(
        [SIGNOFF, "mcp", *command, "--agent", AGENT],
        env=agent_env(server.url, "sk_nobody"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert bad_key.returncode == 2 and "not a valid Signoff API key" in bad_key.stderr


# -- the approval tools -----------------------------------------------------------------------


async def test_approval_tools_over_stdio(server: Server, alice: Reviewer) -> None:
    args = ["mcp", "serve", "--stdio", "--agent", AGENT]
    async with mcp_process(args, agent_env(server.url, KEY)) as session:
        tools = {t.name: t for t in (await session.list_tools()).tools}
        assert set(tools) == {"request_approval", "wait_for_approval", "get_approval"}
        assert "BEFORE" in (tools["request_approval"].description or "")
        assert "pending" in (tools["wait_for_approval"].description or "")

        quick = await session.call_tool(
            "request_approval",
            {"action": {"kind": "lookup", "summary": "Read INV-5"}, "confidence": 0.95},
        )
        assert not quick.is_error, text_of(quick)
        body = quick.structured_content
        assert body is not None
        assert body["status"] == "approved" and body["proceed"] is True
        assert body["verdict"]["status"] == "approved"
        assert body["verdict"]["action"]["kind"] == "lookup"

        held = await session.call_tool(
            "request_approval",
            {
                "action": {
                    "kind": "mcp:pay",
                    "summary": "Pay INV-6",
                    "payload": {"invoice": "INV-6", "amount": 70},
                },
                "confidence": 0.95,
                "thread_id": "agent-run-6",
            },
        )
        body = held.structured_content
        assert body is not None and body["status"] == "pending" and body["verdict"] is None
        rid = body["id"]
        waited = await session.call_tool(
            "wait_for_approval", {"request_id": rid, "timeout_seconds": 1}
        )
        assert waited.structured_content is not None
        assert waited.structured_content["final"] is False
        assert waited.structured_content["proceed"] is False

        edited = {"invoice": "INV-6", "amount": 60}
        await alice.vote(rid, "modify", "discount agreed", modified_payload=json.dumps(edited))
        final = await session.call_tool("wait_for_approval", {"request_id": rid})
        verdict = final.structured_content
        assert verdict is not None
        assert verdict["status"] == "modified" and verdict["proceed"] is True
        assert verdict["action"]["payload"] == edited
        assert "discount agreed" in verdict["rationale"]
        got = await session.call_tool("get_approval", {"request_id": rid})
        assert got.structured_content == verdict

        missing = await session.call_tool("get_approval", {"request_id": "req_nope"})
        assert missing.is_error and "req_nope" in text_of(missing)


async def test_approval_tools_over_streamable_http(server: Server, http_tools: str) -> None:
    async with (
        streamable_http_client(http_tools) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        asked = await session.call_tool(
            "request_approval",
            {"action": {"kind": "note", "summary": "Note it"}, "confidence": 0.3},
        )
        body = asked.structured_content
        assert body is not None and body["status"] == "pending"
        got = await session.call_tool("get_approval", {"request_id": body["id"]})
        assert got.structured_content is not None
        assert got.structured_content["status"] == "pending"
        assert got.structured_content["reasons"] == ["low_confidence"]


async def test_a_call_the_client_gives_up_on_withdraws_its_request(
    server: Server, tmp_path: Path
) -> None:
    book = tmp_path / "ledger.jsonl"
    upstream = ["--upstream", f"{UPSTREAM} --ledger {book}"]
    asked = {"invoice": "INV-C", "amount": 5.0, "to": "X"}
    async with mcp_process(gateway_args(upstream), agent_env(server.url, KEY)) as session:
        with pytest.raises(MCPError):
            await session.call_tool("pay", asked, read_timeout_seconds=3)
        deadline = time.monotonic() + 20
        while True:
            items = (await api(server, "/v1/requests?limit=200"))["items"]
            statuses = [r["status"] for r in items if r["action"]["payload"] == asked]
            if statuses == ["cancelled"] or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
    assert statuses == ["cancelled"]
    assert paid(book) == []


async def test_signoff_out_of_reach_refuses_every_call(server: Server, tmp_path: Path) -> None:
    upstream = ["--upstream", f"{UPSTREAM} --ledger {tmp_path / 'ledger.jsonl'}"]
    with TcpProxy("127.0.0.1", int(server.url.rsplit(":", 1)[1])) as proxy:
        env = agent_env(f"http://127.0.0.1:{proxy.port}", KEY)
        async with mcp_process(gateway_args(upstream), env) as session:
            proxy.cut()
            # Even a call the policy would let through at once: nobody was asked.
            result = await session.call_tool("get_balance", {"account": "ACC-1"})
    assert result.is_error and result.structured_content is None
    assert "Signoff could not be asked about get_balance" in text_of(result)
