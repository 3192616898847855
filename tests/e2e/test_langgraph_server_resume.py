"""A LangGraph thread on the real LangGraph server (`langgraph dev`, langgraph-cli[inmem]),
paused on `interrupt()` by signoff_client's gate until a reviewer's click in the web inbox,
then resumed by the `langgraph_server` resume target: Signoff reads the thread's state and
creates the run that answers the interrupt with the verdict.

Slow: about 20 s, half of it starting `langgraph dev` (its own venv, from
scripts/ensure-langgraph; skipped when that is missing) and `signoff serve`.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient

from adapters.web.passwords import hash_password
from bot.core.domain import sha256_hex
from signoff_client.hitl import GATE_KEY
from tests.e2e.serve import Server, serve
from tests.support.engines import langgraph_dev
from tests.support.http_receiver import free_port
from tests.support.web_reviewer import web_vote

pytestmark = pytest.mark.slow

GRAPH = Path(__file__).resolve().parents[1] / "support" / "langgraph_server_graph.py"


@pytest.fixture(scope="module")
def engines(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Server]]:
    """One `langgraph dev` serving the graph `payer`, one `signoff serve` resuming it."""
    tmp_path = tmp_path_factory.mktemp("langgraph-server")
    key = f"sk_{secrets.token_hex(16)}"
    port = free_port()  # known before either starts: the graph calls Signoff here
    graph_env = {"SIGNOFF_URL": f"http://127.0.0.1:{port}", "SIGNOFF_API_KEY": key}
    with langgraph_dev(tmp_path, {"payer": GRAPH}, graph_env) as langgraph:
        config = {
            "database_url": f"sqlite:///{tmp_path / 'signoff.db'}",
            "agents": [
                {
                    "id": "graph-bot",
                    "key_sha256": sha256_hex(key),
                    "resume": {
                        "kind": "langgraph_server",
                        "url": langgraph,
                        "assistant_id": "payer",
                    },
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
        with serve(tmp_path, config=path, port=port) as server:
            yield langgraph, server


@pytest.fixture
async def langgraph_client(engines: tuple[str, Server]) -> AsyncIterator[LangGraphClient]:
    async with get_client(url=engines[0]) as client:
        yield client


async def settled(client: LangGraphClient, thread_id: str, within: float = 30.0) -> Any:
    """The thread's state once its graph has finished (nothing next, nothing waiting)."""
    deadline = time.monotonic() + within
    while True:
        state = await client.threads.get_state(thread_id)
        if not state["next"] and not state["interrupts"]:
            return state
        assert time.monotonic() < deadline, f"thread {thread_id} still waits: {state}"
        await asyncio.sleep(0.2)


@pytest.mark.parametrize(
    ("verdict", "rationale", "fields", "paid"),
    [
        ("approve", "PO-77 matches", {}, {"invoice": "INV-7", "amount": 950}),
        (
            "modify",
            "the agreed 900",
            {"modified_payload": '{"invoice": "INV-7", "amount": 900}'},
            {"invoice": "INV-7", "amount": 900},
        ),
        ("reject", "duplicate of INV-6", {}, None),
    ],
)
async def test_a_thread_paused_on_the_gate_resumes_with_the_click(
    engines: tuple[str, Server],
    langgraph_client: LangGraphClient,
    verdict: str,
    rationale: str,
    fields: dict[str, str],
    paid: Any,
) -> None:
    _, server = engines
    thread = await langgraph_client.threads.create()
    thread_id = thread["thread_id"]
    await langgraph_client.runs.wait(thread_id, "payer", input={"invoice": "INV-7", "amount": 950})
    paused = await langgraph_client.threads.get_state(thread_id)
    assert paused["next"] == ["gate"]
    [waiting] = paused["interrupts"]
    request_id = waiting["value"][GATE_KEY]
    assert waiting["value"]["tier"] == "manager"

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
    values = (await settled(langgraph_client, thread_id))["values"]
    assert values["paid"] == paid
    assert values["verdict"]["request_id"] == request_id
    assert values["verdict"]["status"] == {"approve": "approved", "modify": "modified"}.get(
        verdict, "rejected"
    )
    assert values["verdict"]["rationale"] == rationale


async def test_a_payment_policy_lets_through_never_pauses(
    langgraph_client: LangGraphClient,
) -> None:
    thread = await langgraph_client.threads.create()
    done = await langgraph_client.runs.wait(
        thread["thread_id"], "payer", input={"invoice": "INV-8", "amount": 120}
    )
    assert isinstance(done, dict)
    assert done["paid"] == {"invoice": "INV-8", "amount": 120}
    assert done["verdict"]["status"] == "approved" and done["verdict"]["votes"] == []
