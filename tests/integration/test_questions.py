"""Asking, not only approving: a request's question, answer schema and reject options, the
`respond` verdict, and the words (`reasons_text`) that reach the agent."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from bot.core.clock import ManualClock
from bot.core.domain import Status, Verdict
from bot.core.errors import InvalidInput
from tests.conftest import RepoFactory
from tests.integration.test_web_inbox import (  # the inbox's fixtures, used by name below
    KEY,
    PAYMENT,
    app,  # noqa: F401
    as_reviewer,
    clock,  # noqa: F401
    submit,
    svc,  # noqa: F401
    vote,
)
from tests.support.http_receiver import HttpReceiver
from tests.support.world import World, make_config

ACCOUNT = {
    "type": "object",
    "properties": {"account": {"enum": ["ops", "treasury"]}},
    "required": ["account"],
    "additionalProperties": False,
}
ASK: dict[str, Any] = {
    "question": "Which account should pay it?",
    "response_schema": ACCOUNT,
    "reject_options": ["Duplicate invoice", "Wrong supplier"],
}


async def test_an_answer_the_schema_refuses_records_nothing_and_a_good_one_resumes_the_agent(
    repo_factory: RepoFactory,
) -> None:
    async with HttpReceiver() as agent:
        world = World(await repo_factory(), make_config(f"{agent.url}/resume"), ManualClock())
        rid = await world.submit(kind="payment", amount=5000.0, currency="USD", **ASK)
        stored = await world.repo.get(rid)
        assert stored is not None
        assert stored.question == ASK["question"]
        assert stored.response_schema == ACCOUNT
        assert stored.reject_options == ("Duplicate invoice", "Wrong supplier")
        assert stored.reasons_text == ["Large payment"]
        assert stored.reason_texts[0].explain == "A payment of 5,000 USD is over the 500 limit"
        before = len(await world.repo.audit_records(request_id=rid))

        with pytest.raises(InvalidInput) as refused:
            await world.engine.vote(
                rid,
                "web:max",
                Verdict.RESPOND,
                channel="web",
                rationale="checked",
                response={"account": "petty-cash"},
            )
        assert refused.value.field == "response"
        assert "at account" in refused.value.problem
        unchanged = await world.repo.get(rid)
        assert unchanged is not None and unchanged.votes == () and unchanged.version == 1
        assert len(await world.repo.audit_records(request_id=rid)) == before

        answered = await world.engine.vote(
            rid,
            "web:max",
            Verdict.RESPOND,
            channel="web",
            rationale="treasury pays suppliers",
            response={"account": "treasury"},
        )
        assert answered.status is Status.APPROVED
        assert answered.response == {"account": "treasury"}
        await world.worker.drain()
        [hit] = await agent.wait_for(1, path="/resume")
        data = json.loads(hit.body)["data"]
        assert data["status"] == "approved"
        assert data["response"] == {"account": "treasury"}
        assert data["question"] == ASK["question"]
        assert data["reasons_text"] == ["Large payment"]
        assert data["votes"][0]["verdict"] == "respond"
        assert data["votes"][0]["response"] == {"account": "treasury"}
        assert data["changes"] == []


async def test_an_answer_counts_as_one_person_of_two(repo_factory: RepoFactory) -> None:
    world = World(await repo_factory(), make_config(), ManualClock())
    rid = await world.submit(reversible=False, question="Is the backup done?")
    first = await world.engine.vote(
        rid, "web:max", Verdict.RESPOND, channel="web", rationale="seen", response="yes, at 02:00"
    )
    assert first.status is Status.PENDING and first.response == "yes, at 02:00"
    with pytest.raises(InvalidInput, match="an answer is required"):
        await world.engine.vote(
            rid, "web:mia", Verdict.RESPOND, channel="web", rationale="ok", response="  "
        )
    done = await world.engine.vote(rid, "web:mia", Verdict.APPROVE, channel="web", rationale="ok")
    assert done.status is Status.APPROVED and done.response == "yes, at 02:00"


async def test_a_modify_is_listed_leaf_by_leaf_in_the_webhook(repo_factory: RepoFactory) -> None:
    async with HttpReceiver() as agent:
        world = World(await repo_factory(), make_config(f"{agent.url}/resume"), ManualClock())
        rid = await world.submit(confidence=0.3, payload={"invoice": "INV-1", "amount": 950})
        await world.engine.vote(
            rid,
            "web:sam",
            Verdict.MODIFY,
            channel="web",
            rationale="discount",
            modified_payload={"invoice": "INV-1", "amount": 900},
        )
        await world.worker.drain()
        [hit] = await agent.wait_for(1, path="/resume")
        data = json.loads(hit.body)["data"]
        assert data["status"] == "modified"
        assert data["changes"] == [{"path": "amount", "old": 950, "new": 900}]


async def test_the_agent_api_checks_the_schema_and_shows_the_question(app: Any) -> None:  # noqa: F811
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://signoff",
        headers={"Authorization": f"Bearer {KEY}"},
    ) as agent:
        bad = await agent.post(
            "/v1/requests", json={**PAYMENT, "response_schema": {"type": "wrong-type"}}
        )
        assert bad.status_code == 422
        assert bad.json()["error"] == "invalid_body"
        [problem] = bad.json()["detail"]
        assert problem["loc"] == ["body", "response_schema"]
        assert "not a valid JSON Schema" in problem["msg"]
        too_many = await agent.post("/v1/requests", json={**PAYMENT, "reject_options": [""]})
        assert too_many.status_code == 422

        rid = await submit(agent, PAYMENT, **ASK)
        shown = (await agent.get(f"/v1/requests/{rid}")).json()
        assert shown["question"] == ASK["question"]
        assert shown["response_schema"] == ACCOUNT
        assert shown["reject_options"] == ASK["reject_options"]
        assert shown["reasons_text"] == ["Large payment"]
        assert shown["response"] is None


async def test_a_reviewer_answers_and_picks_reject_reasons_in_the_web_inbox(
    app: Any,  # noqa: F811
    svc: Any,  # noqa: F811
) -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://signoff",
        headers={"Authorization": f"Bearer {KEY}"},
    ) as agent:
        answer_me = await submit(agent, PAYMENT, **ASK)
        reject_me = await submit(agent, PAYMENT, **ASK)
    async with as_reviewer(app, "alice") as alice:
        page = await alice.get(f"/requests/{answer_me}")
        assert "Which account should pay it?" in page.text
        assert "Large payment" in page.text
        assert "A payment of 5,000 USD is over the 500 limit" in page.text
        assert 'name="response"' in page.text and "Duplicate invoice" in page.text
        wrong = await vote(alice, answer_me, "respond", "checked", response='{"account": 1}')
        assert wrong.status_code == 422
        assert "does not match the question at account" in wrong.text
        assert (await svc.engine.get(answer_me)).votes == ()
        right = await vote(alice, answer_me, "respond", "checked", response='{"account": "ops"}')
        assert right.status_code == 303, right.text
        answered = await svc.engine.get(answer_me)
        assert answered.status is Status.APPROVED
        assert answered.response == {"account": "ops"}

        rejected = await vote(alice, reject_me, "reject", "", reject_option="Wrong supplier")
        assert rejected.status_code == 303, rejected.text
        ended = await svc.engine.get(reject_me)
        assert ended.status is Status.REJECTED
        assert ended.votes[0].rationale == "Wrong supplier"


async def test_a_person_as_a_tool_the_client_asks_and_waits_for_the_answer(
    app: Any,  # noqa: F811
    svc: Any,  # noqa: F811
) -> None:
    from signoff_client import AsyncSignoffClient

    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://signoff")
    async with http, AsyncSignoffClient("http://signoff", KEY, http=http) as signoff:
        asking = asyncio.create_task(
            signoff.ask(
                "Which warehouse ships order 991?",
                response_schema={"type": "string", "enum": ["north", "south"]},
                timeout=30,
            )
        )
        for _ in range(400):  # the question reaches the queue while ask() waits
            pending = await svc.engine.pending_for("web:alice")
            if pending:
                break
            await asyncio.sleep(0.05)
        [item] = pending
        assert item.question == "Which warehouse ships order 991?"
        assert item.lane.value == "escalate" and item.reasons == ("low_confidence",)
        await svc.engine.vote(item.id, "web:alice", Verdict.RESPOND, channel="web", answer="south")
        detail = await asking
    assert detail.status == "approved" and detail.response == "south"
