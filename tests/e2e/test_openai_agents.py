"""OpenAI Agents SDK runs gated by Signoff: a tool call that policy escalates pauses the run,
the paused state survives the process, a reviewer decides in the web inbox, and a fresh
process resumes the run from its saved state with the verdict. The model is the SDK's own
`ScriptedModel` (no network); Signoff is a real `signoff serve`."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from agents import Runner
from agents.testing.model import ScriptedModel, assistant_message, function_call

from adapters.web.passwords import hash_password
from bot.core.domain import sha256_hex
from signoff_client import AsyncSignoffClient
from signoff_client.openai_agents import SignoffApprovals
from tests.e2e.serve import Server, serve
from tests.support.openai_agent import NO_TRACING, THREAD, build
from tests.support.web_reviewer import web_vote

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def signoff(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str]]:
    tmp_path = tmp_path_factory.mktemp("openai-agents")
    key = f"sk_{secrets.token_hex(16)}"
    config = {
        "database_url": f"sqlite:///{tmp_path / 'signoff.db'}",
        "agents": [{"id": "payer", "key_sha256": sha256_hex(key)}],
        "routing": {
            "rules": [
                {
                    "name": "large_payment",
                    "when": 'action.kind == "tool:pay_invoice" && action.payload.amount > 500',
                    "risk": "high",
                }
            ]
        },
        "tiers": [
            {"name": t, "sla": "1h", "reviewers": ["web:alice"]}
            for t in ("junior", "senior", "manager")
        ],
        "web": {"reviewers": {"alice": {"password_hash": hash_password("alice-pw")}}},
    }
    path = tmp_path / "signoff.yaml"
    path.write_text(yaml.safe_dump(config))
    with serve(tmp_path, config=path) as server:
        yield server, key


async def run_until_paused(
    server: Server, key: str, call: dict[str, Any], call_id: str
) -> tuple[Any, list[dict[str, Any]]]:
    paid: list[dict[str, Any]] = []
    model = ScriptedModel([[function_call(call["tool"], call["args"], call_id=call_id)]])
    async with AsyncSignoffClient(server.url, key) as client:
        approvals = SignoffApprovals(client, thread_id=THREAD)
        agent = build(approvals, model, paid)
        result = await Runner.run(agent, "Pay INV-7", run_config=NO_TRACING)
        answers = await approvals.submit(result.interruptions)
    assert [a.status for a in answers] == ["pending"]
    return result, paid


def resume_in_a_fresh_process(
    tmp_path: Path, state: str, server: Server, key: str, final: str
) -> dict[str, Any]:
    state_file, out_file = tmp_path / "run-state.json", tmp_path / "out.json"
    state_file.write_text(state)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.support.openai_agent",
            str(state_file),
            str(out_file),
            server.url,
            key,
            final,
        ],
        cwd=ROOT,
        env={**os.environ, "OPENAI_AGENTS_DISABLE_TRACING": "1"},
        check=True,
        timeout=120,
    )
    result: dict[str, Any] = json.loads(out_file.read_text())
    return result


def only_pending(server: Server, key: str) -> str:
    listed = httpx.get(
        f"{server.url}/v1/requests",
        params={"status": "pending"},
        headers={"authorization": f"Bearer {key}"},
    ).json()["items"]
    [item] = [i for i in listed if i["thread_id"] == THREAD]
    return str(item["id"])


@pytest.mark.parametrize(
    ("verdict", "rationale", "fields", "paid", "model_reads"),
    [
        ("approve", "PO-77 matches", {}, [{"invoice": "INV-7", "amount": 950.0}], "paid INV-7"),
        ("reject", "duplicate of INV-6", {}, [], "duplicate of INV-6"),
        (
            "modify",
            "the agreed price is 900",
            {"modified_payload": '{"invoice": "INV-7", "amount": 900}'},
            [],
            '{"amount":900,"invoice":"INV-7"}',
        ),
    ],
)
async def test_a_paused_run_survives_the_process_and_resumes_with_the_verdict(
    signoff: tuple[Server, str],
    tmp_path: Path,
    verdict: str,
    rationale: str,
    fields: dict[str, str],
    paid: list[dict[str, Any]],
    model_reads: str,
) -> None:
    server, key = signoff
    call = {"tool": "pay_invoice", "args": {"invoice": "INV-7", "amount": 950}}
    result, paid_before = await run_until_paused(server, key, call, f"call_{verdict}")
    assert len(result.interruptions) == 1 and paid_before == []
    state = result.to_state().to_string()
    request_id = only_pending(server, key)
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
    resumed = await asyncio.to_thread(
        resume_in_a_fresh_process, tmp_path, state, server, key, "done"
    )
    assert resumed["final_output"] == "done"
    assert resumed["paid"] == paid
    [output] = resumed["tool_outputs"]
    assert model_reads in output


async def test_a_call_policy_lets_through_runs_at_once(signoff: tuple[Server, str]) -> None:
    server, key = signoff
    paid: list[dict[str, Any]] = []
    model = ScriptedModel(
        [
            [function_call("lookup_invoice", {"invoice": "INV-8"}, call_id="call_lookup")],
            [assistant_message("INV-8 is 950 USD")],
        ]
    )
    async with AsyncSignoffClient(server.url, key) as client:
        agent = build(SignoffApprovals(client, thread_id="conv-lookup"), model, paid)
        result = await Runner.run(agent, "What is INV-8?", run_config=NO_TRACING)
    assert result.interruptions == [] and result.final_output == "INV-8 is 950 USD"
    assert paid == [{"looked_up": "INV-8"}]
    async with httpx.AsyncClient(headers={"authorization": f"Bearer {key}"}) as api:
        listed = (await api.get(f"{server.url}/v1/requests")).json()["items"]
    [asked] = [i for i in listed if i["thread_id"] == "conv-lookup"]
    assert asked["status"] == "approved" and asked["lane"] == "autonomous"
