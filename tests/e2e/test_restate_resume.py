"""A Restate invocation on the real Restate server (npm @restatedev/restate-server), held on
an awakeable until a reviewer's click in the web inbox, then completed by the `restate`
resume target: resolved with the verdict, or rejected (a terminal error in the handler).

Slow: it starts the Restate server, a restate-sdk service and `signoff serve`.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import uvicorn
import yaml

from adapters.web.passwords import hash_password
from bot.core.domain import sha256_hex
from tests.e2e.serve import Server, serve
from tests.support.engines import Restate, restate_server
from tests.support.http_receiver import free_port
from tests.support.restate_service import app as restate_app
from tests.support.web_reviewer import web_vote

pytestmark = pytest.mark.slow


@contextmanager
def service_endpoint() -> Iterator[str]:
    """The restate-sdk service over HTTP/1.1 (request-response protocol) on loopback."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(restate_app, host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the restate service did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Restate, Server, str]]:
    tmp_path = tmp_path_factory.mktemp("restate")
    key = f"sk_{secrets.token_hex(16)}"
    with restate_server(tmp_path) as restate, service_endpoint() as endpoint:
        registered = httpx.post(
            f"{restate.admin}/deployments",
            json={"uri": endpoint, "use_http_11": True},
            timeout=30,
        )
        assert registered.status_code in (200, 201), registered.text
        config = {
            "database_url": f"sqlite:///{tmp_path / 'signoff.db'}",
            "agents": [
                {
                    "id": "restate-bot",
                    "key_sha256": sha256_hex(key),
                    "resume": {"kind": "restate", "ingress": restate.ingress},
                }
            ],
            "tiers": [
                {"name": t, "sla": "1h", "reviewers": ["web:alice"]}
                for t in ("junior", "senior", "manager")
            ],
            "web": {"reviewers": {"alice": {"password_hash": hash_password("alice-pw")}}},
        }
        path = tmp_path / "signoff.yaml"
        path.write_text(yaml.safe_dump(config))
        with serve(tmp_path, config=path) as server:
            yield restate, server, key


async def pending_id(server: Server, key: str, thread_id: str) -> str:
    headers = {"authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=server.url, headers=headers) as api:
        for _ in range(300):
            listed = (await api.get("/v1/requests", params={"status": "pending"})).json()
            for item in listed["items"]:
                if item["thread_id"] == thread_id:
                    return str(item["id"])
            await asyncio.sleep(0.1)
    raise AssertionError(f"no pending request for {thread_id}")


@pytest.mark.parametrize(
    ("verdict", "rationale", "fields", "paid", "denied"),
    [
        ("approve", "PO-77 matches", {}, {"invoice": "INV-9", "amount": 950}, None),
        (
            "modify",
            "the agreed 900",
            {"modified_payload": '{"invoice": "INV-9", "amount": 900}'},
            {"invoice": "INV-9", "amount": 900},
            None,
        ),
        ("reject", "duplicate of INV-8", {}, None, "duplicate of INV-8"),
    ],
)
async def test_a_restate_invocation_waits_on_its_awakeable_until_the_click(
    world: tuple[Restate, Server, str],
    verdict: str,
    rationale: str,
    fields: dict[str, str],
    paid: Any,
    denied: str | None,
) -> None:
    restate, server, key = world
    thread_id = f"restate-{uuid.uuid4().hex[:8]}"
    order = {
        "signoff_url": server.url,
        "key": key,
        "thread_id": thread_id,
        "invoice": "INV-9",
        "amount": 950,
    }
    async with httpx.AsyncClient(base_url=restate.ingress, timeout=60) as ingress:
        sent = await ingress.post("/payments/pay/send", json=order)
        assert sent.status_code in (200, 202), sent.text
        invocation = sent.json()["invocationId"]
        request_id = await pending_id(server, key, thread_id)
        await asyncio.to_thread(
            web_vote,
            server.url,
            request_id,
            verdict,
            rationale,
            name="alice",
            password="alice-pw",
            **fields,
        )
        attached = await ingress.get(f"/restate/invocation/{invocation}/attach")
    assert attached.status_code == 200, attached.text
    result = attached.json()
    assert result["request"] == request_id
    assert result["paid"] == paid
    if denied is None:
        assert result["verdict"]["rationale"] == rationale
    else:
        assert denied in result["denied"]
