"""The seed's central pattern, end to end with the real langgraph: a graph pauses at a Signoff
gate, its process goes away, a human decides days later, and the signed webhook resumes the
graph from its SQLite checkpoint in a fresh process (a fresh graph over the same file).

Signoff runs in-process (its services on a SQLite repository, a manual clock) but is reached
over real HTTP: the gate's client and the agent's ResumeReceiver both sit behind uvicorn on
loopback, and the outbox delivers the webhook over a socket. The human decides through the
engine (as the HTTP API and web inbox do) or, with `slack_stack`, by clicking the card in a
fake Slack: signed block_actions and view_submission payloads POSTed to `/slack/events`.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, TypedDict

import httpx
import pytest
from langchain.agents import create_agent
from langchain.agents.middleware import HumanInTheLoopMiddleware
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.tools import tool
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt

from adapters.resume import WebhookResumeTarget
from adapters.slack import SlackApp
from bot.core.clock import ManualClock
from bot.core.domain import OutboxKind, OutboxStatus
from bot.core.domain import Verdict as Vote
from bot.core.ports import WebhookDelivery
from bot.engine.wire import request_json
from bot.server.app import build_services, create_app
from bot.server.config import parse_config
from bot.server.services import Services
from examples.invoice_agent.app import create_app as create_agent_app
from examples.invoice_agent.graph import build_graph, thread_id
from signoff_client._client import AsyncSignoffClient
from signoff_client.hitl import GATE_KEY, Verdict, answer_for, verdict_from_webhook
from signoff_client.langgraph import ResumeReceiver, SignoffGate, submit_interrupts
from storage import open_repository
from tests.support.fake_slack import TOKEN, FakeSlack, Message, action_ids, all_text
from tests.support.loopback import LoopbackServer
from tests.support.slack_payloads import block_actions, form_body, signed, view_submission
from tests.support.world import TIERS

KEY = "sk_test_invoice_agent"
SECRET = "whsec_" + base64.b64encode(os.urandom(24)).decode()
SECRET_ENV = "INVOICE_AGENT_WEBHOOK_SECRET"
AGENT = "invoice-agent"
INVOICES = Path(__file__).parents[2] / "examples" / "invoice_agent" / "invoices"
SIGNING_SECRET = "langgraph-gate-slack-signing-secret"
# The invoices that wait are payments over 500: high risk, the manager tier. In the Slack
# variant that tier also has a channel and a Slack reviewer, Max (U0MAX).
SLACK_TIERS: list[dict[str, Any]] = [
    *TIERS[:2],
    {**TIERS[2], "slack_channel": "C0MGR", "reviewers": [*TIERS[2]["reviewers"], "slack:U0MAX"]},
]


def invoice(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((INVOICES / name).read_text())
    return data


@dataclass
class Stack:
    """Signoff (served), the agent's callback URL (served when `agent_up`), one clock."""

    svc: Services
    signoff_url: str
    agent: LoopbackServer
    clock: ManualClock
    tmp: Path
    slack: FakeSlack | None = None
    slack_app: SlackApp | None = None
    reports: list[str] = field(default_factory=list)

    @property
    def checkpoints(self) -> str:
        return str(self.tmp / "agent-checkpoints.db")

    def client(self) -> AsyncSignoffClient:
        return AsyncSignoffClient(self.signoff_url, KEY, max_retries=0)

    @asynccontextmanager
    async def agent_up(self) -> AsyncIterator[None]:
        """The invoice agent's process, as `python -m examples.invoice_agent serve` runs it."""
        app = create_agent_app(
            db_path=self.checkpoints,
            signoff_url=self.signoff_url,
            api_key=KEY,
            webhook_secret=SECRET,
            report=self.reports.append,
        )
        async with self.agent.serve(app):
            yield

    async def webhooks(self) -> list[Any]:
        return list(await self.svc.repo.list_outbox(kind=OutboxKind.WEBHOOK))

    # -- a reviewer in Slack (slack_stack only) --

    def card(self, request_id: str) -> Message:
        assert self.slack is not None
        [card] = [m for m in self.slack.messages() if f"`{request_id}`" in all_text(m.blocks)]
        return card

    async def to_slack_events(self, payload: dict[str, Any]) -> httpx.Response:
        """POST an interaction to Signoff as Slack does: a form, signed with the secret."""
        body = form_body(payload)
        async with httpx.AsyncClient(base_url=self.signoff_url) as http:
            return await http.post(
                "/slack/events", content=body, headers=signed(body, SIGNING_SECRET)
            )

    async def slack_verdict(
        self,
        request_id: str,
        action_id: str,
        *,
        rationale: str,
        edit: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> None:
        """Max clicks `action_id` on the card; the form that opens (any verdict on a high
        risk item asks why) is submitted with `rationale` and, for modify, the payload it
        shows changed by `edit`."""
        assert self.slack is not None and self.slack_app is not None
        opened = len(self.slack.calls("views.open"))
        url = self.slack.response_url(f"click-{request_id}")
        card = self.card(request_id)
        response = await self.to_slack_events(
            block_actions(card, "U0MAX", action_id, request_id, response_url=url)
        )
        assert response.status_code == 200, response.text
        view = (await self.slack.wait_for("views.open", opened + 1))[-1].view
        payload = None
        if edit is not None:
            [shown] = [b for b in view["blocks"] if b.get("block_id") == "modified_payload"]
            payload = json.dumps(edit(json.loads(shown["element"]["initial_value"])))
        form = view_submission("U0MAX", view, rationale=rationale, payload=payload)
        response = await self.to_slack_events(form)
        assert response.status_code == 200 and response.content == b"", response.text
        async with asyncio.timeout(10):
            await self.slack_app.idle()  # the vote is recorded after the ack


@asynccontextmanager
async def open_stack(
    tmp_path: Path,
    *,
    tiers: list[dict[str, Any]] = TIERS,
    slack: FakeSlack | None = None,
    env: Mapping[str, str] | None = None,
) -> AsyncIterator[Stack]:
    agent = LoopbackServer()
    settings: dict[str, Any] = {
        "agents": [
            {
                "id": AGENT,
                "key_sha256": hashlib.sha256(KEY.encode()).hexdigest(),
                "callback_url": f"{agent.url}/resume",
                "webhook_secret_env": SECRET_ENV,
            }
        ],
        "tiers": tiers,
        "routing": {"on_timeout": "expire"},
    }
    if slack is not None:
        settings["slack"] = {"api_url": slack.api_url}
    config = parse_config(settings, env={})
    env = {SECRET_ENV: SECRET, **(env or {})}
    clock = ManualClock()
    repo = await open_repository(f"sqlite:///{tmp_path / 'signoff.db'}", migrate=True)
    svc = await build_services(config, repo=repo, clock=clock, env=env, start_scheduler=False)
    signoff = LoopbackServer()
    app = create_app(config, services=svc, env=env)
    try:
        async with svc.stack, signoff.serve(app, lifespan="off"):
            yield Stack(svc, signoff.url, agent, clock, tmp_path, slack, app.state.slack)
    finally:
        await repo.close()


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    async with open_stack(tmp_path) as opened:
        yield opened


@pytest.fixture
async def slack_stack(tmp_path: Path) -> AsyncIterator[Stack]:
    """Signoff with Slack on, pointed at a fake Slack; reviewers click its cards."""
    env = {"SLACK_BOT_TOKEN": TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET}
    async with (
        FakeSlack() as slack,
        open_stack(tmp_path, tiers=SLACK_TIERS, slack=slack, env=env) as opened,
    ):
        assert opened.slack_app is not None
        yield opened


async def run_until_gate(stack: Stack, name: str) -> tuple[dict[str, Any], str | None]:
    """The first agent process: run the invoice graph, then let the process (graph) go."""
    config: Any = {"configurable": {"thread_id": thread_id(invoice(name)["number"])}}
    async with (
        AsyncSqliteSaver.from_conn_string(stack.checkpoints) as saver,
        stack.client() as client,
    ):
        out = await build_graph(SignoffGate(client), saver).ainvoke(
            {"invoice": invoice(name)}, config
        )
    waiting = out.get("__interrupt__")
    return out, waiting[0].value[GATE_KEY] if waiting else None


async def final_state(stack: Stack, number: str) -> dict[str, Any]:
    """Read the thread with yet another graph instance, as `show` does."""
    config: Any = {"configurable": {"thread_id": thread_id(number)}}
    async with (
        AsyncSqliteSaver.from_conn_string(stack.checkpoints) as saver,
        stack.client() as client,
    ):
        state = await build_graph(SignoffGate(client), saver).aget_state(config)
    assert not state.interrupts
    values: dict[str, Any] = state.values
    return values


async def test_approve_after_the_agent_was_down_resumes_from_the_checkpoint(
    stack: Stack,
) -> None:
    out, request_id = await run_until_gate(stack, "inv-123.json")
    assert request_id is not None and "payment" not in out
    answer = request_json(await stack.svc.engine.get(request_id))
    assert answer["lane"] == "escalate" and answer["reasons"] == ["high_value_transaction"]

    await stack.svc.engine.vote(
        request_id, "web:max", Vote.APPROVE, channel="web", name="Max", rationale="PO-77 ok"
    )
    await stack.svc.worker.drain()  # the agent is down: connection refused, retried later
    [pending] = await stack.webhooks()
    assert pending.status is OutboxStatus.PENDING and pending.attempts == 1

    async with stack.agent_up():
        stack.clock.advance(timedelta(minutes=1))
        await stack.svc.worker.drain()
        [done] = await stack.webhooks()
        assert done.status is OutboxStatus.DONE, done.last_error
        assert stack.reports == ["INV-123 paid: 4,200.00 USD to ACME (approved by Max: PO-77 ok)"]

        # At-least-once: the same webhook again changes nothing (the graph has moved on).
        again = await WebhookResumeTarget().deliver(
            WebhookDelivery(done.id, f"{stack.agent.url}/resume", done.payload["body"], SECRET, 3)
        )
        assert again.ok and len(stack.reports) == 1

    values = await final_state(stack, "INV-123")
    assert values["status"] == "paid" and values["payment"]["amount"] == 4200.0
    verdict = Verdict.model_validate(values["verdict"])
    assert verdict.request_id == request_id and verdict.status == "approved"
    assert verdict.votes[0]["reviewer"] == "web:max" and verdict.rationale == "PO-77 ok"
    assert verdict.action_sha256 == done.payload["body"]["data"]["action_sha256"]
    # The gate's replay on resume reused the request: one request for the invoice.
    page = await stack.svc.repo.list_requests(agent_id=AGENT)
    assert [r.id for r in page.items] == [request_id]


async def test_modify_pays_the_amount_the_reviewer_set(stack: Stack) -> None:
    _, request_id = await run_until_gate(stack, "inv-125.json")
    assert request_id is not None
    request = await stack.svc.engine.get(request_id)
    assert request.confidence == 0.5  # two problems: no due date, amount off the PO
    edited = {**request.action.payload, "amount": 900.0}
    await stack.svc.engine.vote(
        request_id,
        "web:max",
        Vote.MODIFY,
        channel="web",
        name="Max",
        rationale="pay the PO amount",
        modified_payload=edited,
    )
    async with stack.agent_up():
        await stack.svc.worker.drain()
    values = await final_state(stack, "INV-125")
    assert values["status"] == "paid"
    assert values["payment"]["amount"] == 900.0  # not the 950 the agent proposed
    assert values["payment"]["signoff_status"] == "modified"
    verdict = Verdict.model_validate(values["verdict"])
    assert verdict.modified_action is not None and verdict.payload["amount"] == 900.0
    assert stack.reports == [
        "INV-125 paid: 900.00 USD to ACME (approved by Max: pay the PO amount)"
    ]


async def test_a_signed_slack_approval_resumes_the_graph_in_a_fresh_process(
    slack_stack: Stack,
) -> None:
    stack, slack = slack_stack, slack_stack.slack
    assert slack is not None
    _, request_id = await run_until_gate(stack, "inv-123.json")  # the agent process ends
    assert request_id is not None
    await stack.svc.worker.drain()  # the card goes to the manager tier's channel
    card = stack.card(request_id)
    assert card.channel == "C0MGR" and "signoff_approve" in action_ids(card.blocks)

    await stack.slack_verdict(request_id, "signoff_approve", rationale="PO-77 ok")
    await stack.svc.worker.drain()  # the card is updated; the agent is down: retried later
    assert action_ids(stack.card(request_id).blocks) == []
    [pending] = await stack.webhooks()
    assert pending.status is OutboxStatus.PENDING

    async with stack.agent_up():
        stack.clock.advance(timedelta(minutes=1))
        await stack.svc.worker.drain()
    assert stack.reports == ["INV-123 paid: 4,200.00 USD to ACME (approved by max: PO-77 ok)"]
    values = await final_state(stack, "INV-123")
    assert values["status"] == "paid" and values["payment"]["amount"] == 4200.0
    verdict = Verdict.model_validate(values["verdict"])
    assert verdict.request_id == request_id and verdict.status == "approved"
    [vote] = verdict.votes
    assert (vote["reviewer"], vote["channel"]) == ("slack:U0MAX", "slack")


async def test_a_slack_modify_pays_the_edited_payload_in_a_fresh_process(
    slack_stack: Stack,
) -> None:
    stack = slack_stack
    _, request_id = await run_until_gate(stack, "inv-125.json")
    assert request_id is not None
    await stack.svc.worker.drain()
    # The form shows the payload the agent proposed; the reviewer sets the PO's amount.
    await stack.slack_verdict(
        request_id,
        "signoff_modify",
        rationale="pay the PO amount",
        edit=lambda proposed: {**proposed, "amount": 900.0},
    )
    async with stack.agent_up():
        await stack.svc.worker.drain()
    values = await final_state(stack, "INV-125")
    assert values["status"] == "paid"
    assert values["payment"]["amount"] == 900.0  # not the 950 the agent proposed
    assert values["payment"]["signoff_status"] == "modified"
    verdict = Verdict.model_validate(values["verdict"])
    assert verdict.modified_action is not None and verdict.payload["amount"] == 900.0
    assert verdict.votes[0]["reviewer"] == "slack:U0MAX"
    assert stack.reports == [
        "INV-125 paid: 900.00 USD to ACME (approved by max: pay the PO amount)"
    ]
    assert "Approved with changes" in all_text(stack.card(request_id).blocks)


async def test_reject_holds_the_invoice_with_the_reason(stack: Stack) -> None:
    _, request_id = await run_until_gate(stack, "inv-123.json")
    assert request_id is not None
    await stack.svc.engine.vote(
        request_id, "web:max", Vote.REJECT, channel="web", name="Max", rationale="duplicate"
    )
    async with stack.agent_up():
        await stack.svc.worker.drain()
    values = await final_state(stack, "INV-123")
    assert values["status"] == "held (rejected)" and values["note"] == "duplicate"
    assert "payment" not in values
    assert stack.reports == ["INV-123 held (rejected): duplicate"]


async def test_expiry_holds_the_invoice(stack: Stack) -> None:
    _, request_id = await run_until_gate(stack, "inv-123.json")
    assert request_id is not None
    stack.clock.advance(timedelta(hours=5))  # past the manager tier's 4h SLA, the last tier
    await stack.svc.engine.sweep()
    assert (await stack.svc.engine.get(request_id)).status.value == "expired"
    async with stack.agent_up():
        await stack.svc.worker.drain()
    values = await final_state(stack, "INV-123")
    assert values["status"] == "held (expired)" and "payment" not in values
    assert Verdict.model_validate(values["verdict"]).votes == []


async def test_autonomous_invoice_is_paid_at_once_and_its_webhook_is_a_no_op(
    stack: Stack,
) -> None:
    out, request_id = await run_until_gate(stack, "inv-124.json")
    assert request_id is None and out["status"] == "paid"
    assert Verdict.model_validate(out["verdict"]).status == "approved"
    async with stack.agent_up():
        await stack.svc.worker.drain()  # the resolved-at-submit webhook: nothing waits
    [done] = await stack.webhooks()
    assert done.status is OutboxStatus.DONE and stack.reports == []


async def test_the_poll_path_resumes_without_a_callback(stack: Stack) -> None:
    """`process --wait`: the agent waits with client.wait and resumes in its own process."""
    _, request_id = await run_until_gate(stack, "inv-123.json")
    assert request_id is not None
    await stack.svc.engine.vote(
        request_id, "web:max", Vote.APPROVE, channel="web", name="Max", rationale="ok"
    )
    config: Any = {"configurable": {"thread_id": thread_id("INV-123")}}
    async with (
        AsyncSqliteSaver.from_conn_string(stack.checkpoints) as saver,
        stack.client() as client,
    ):
        graph = build_graph(SignoffGate(client), saver)
        [waiting] = (await graph.aget_state(config)).interrupts
        detail = await client.wait(request_id, timeout=5)
        body = {"type": "request.resolved", "data": detail.model_dump(mode="json")}
        answer = answer_for(waiting.value, verdict_from_webhook(body))
        out = await graph.ainvoke(Command(resume={waiting.id: answer}), config)
    assert out["status"] == "paid"


# -- the formats agents already use -------------------------------------------------------

paid: list[tuple[str, float]] = []


@tool
def pay_invoice(invoice: str, amount: float) -> str:
    """Pay a supplier invoice."""
    paid.append((invoice, amount))
    return f"paid {invoice}: {amount}"


class ScriptedModel(GenericFakeChatModel):
    def bind_tools(self, tools: Any, **kwargs: Any) -> ScriptedModel:
        return self


def hitl_agent(saver: AsyncSqliteSaver, *replies: AIMessage, mode: Any = "batched") -> Any:
    return create_agent(
        ScriptedModel(messages=iter(replies)),
        tools=[pay_invoice],
        middleware=[
            HumanInTheLoopMiddleware(
                interrupt_on={"pay_invoice": {"allowed_decisions": ["approve", "edit", "reject"]}},
                interrupt_mode=mode,
            )
        ],
        checkpointer=saver,
    )


@pytest.fixture
def ledger() -> Iterator[list[tuple[str, float]]]:
    paid.clear()
    yield paid
    paid.clear()


async def sam_decides(
    stack: Stack,
    request_id: str,
    verdict: str,
    edited: dict[str, Any],
    why_modify: str,
    why_reject: str,
) -> None:
    """The reviewer's answer to an interrupt: approve, modify to `edited`, or reject."""
    engine = stack.svc.engine
    if verdict == "approve":
        await engine.vote(request_id, "web:sam", Vote.APPROVE, channel="web")
    elif verdict == "modify":
        await engine.vote(
            request_id,
            "web:sam",
            Vote.MODIFY,
            channel="web",
            rationale=why_modify,
            modified_payload=edited,
        )
    else:
        await engine.vote(
            request_id, "web:sam", Vote.REJECT, channel="web", name="Sam", rationale=why_reject
        )


@asynccontextmanager
async def receiver_up(stack: Stack, graph: Any) -> AsyncIterator[None]:
    async with stack.agent.serve(ResumeReceiver(graph, SECRET), lifespan="off"):
        yield


@pytest.mark.parametrize("verdict", ["approve", "modify", "reject"])
async def test_hitl_middleware_gets_signoff_as_its_reviewer(
    stack: Stack, ledger: list[tuple[str, float]], verdict: str
) -> None:
    config: Any = {"configurable": {"thread_id": "hitl-1"}}
    call = {"name": "pay_invoice", "args": {"invoice": "INV-9", "amount": 900.0}, "id": "c1"}
    async with (
        AsyncSqliteSaver.from_conn_string(stack.checkpoints) as saver,
        stack.client() as client,
    ):
        agent = hitl_agent(saver, AIMessage(content="", tool_calls=[call]))
        await agent.ainvoke({"messages": [{"role": "user", "content": "pay INV-9"}]}, config)
        [answer] = await submit_interrupts(client, agent, config, confidence=0.3, amount=900)
        again = await submit_interrupts(client, agent, config, confidence=0.3, amount=900)
    assert answer.status == "pending" and [a.id for a in again] == [answer.id]
    request = await stack.svc.engine.get(answer.id)
    assert request.action.kind == "pay_invoice"
    assert request.action.payload == {"tool_calls": [{"name": "pay_invoice", "args": call["args"]}]}
    assert "Tool execution requires approval" in request.context["summary"]

    edited = {
        "tool_calls": [{"name": "pay_invoice", "args": {"invoice": "INV-9", "amount": 800.0}}]
    }
    await sam_decides(stack, answer.id, verdict, edited, "discount", "not ours")
    async with AsyncSqliteSaver.from_conn_string(stack.checkpoints) as saver:
        fresh = hitl_agent(saver, AIMessage(content="done"))
        async with receiver_up(stack, fresh):
            await stack.svc.worker.drain()
        state = await fresh.aget_state(config)
    assert not state.interrupts and state.values["messages"][-1].content == "done"
    result = next(m for m in state.values["messages"] if isinstance(m, ToolMessage))
    if verdict == "approve":
        assert ledger == [("INV-9", 900.0)]
    elif verdict == "modify":
        assert ledger == [("INV-9", 800.0)]
        assert "a human reviewer replaced this tool call" in str(result.content)
    else:
        assert ledger == []
        assert result.status == "error"
        assert f"Rejected in Signoff by Sam: not ours ({answer.id})" in str(result.content)


async def test_hitl_per_call_mode_gets_one_decision_that_fits_its_schema(
    stack: Stack, ledger: list[tuple[str, float]]
) -> None:
    config: Any = {"configurable": {"thread_id": "hitl-per-call"}}
    call = {"name": "pay_invoice", "args": {"invoice": "INV-7", "amount": 70.0}, "id": "c7"}
    async with (
        AsyncSqliteSaver.from_conn_string(stack.checkpoints) as saver,
        stack.client() as client,
    ):
        agent = hitl_agent(saver, AIMessage(content="", tool_calls=[call]), mode="per_call")
        await agent.ainvoke({"messages": [{"role": "user", "content": "pay INV-7"}]}, config)
        [answer] = await submit_interrupts(client, agent, config, confidence=0.3)
    edited = {"tool_calls": [{"name": "pay_invoice", "args": {"invoice": "INV-7", "amount": 7.0}}]}
    await stack.svc.engine.vote(
        answer.id, "web:sam", Vote.MODIFY, channel="web", rationale="typo", modified_payload=edited
    )
    async with AsyncSqliteSaver.from_conn_string(stack.checkpoints) as saver:
        fresh = hitl_agent(saver, AIMessage(content="done"), mode="per_call")
        async with receiver_up(stack, fresh):
            await stack.svc.worker.drain()
        assert not (await fresh.aget_state(config)).interrupts
    assert ledger == [("INV-7", 7.0)]


class InboxState(TypedDict, total=False):
    draft: dict[str, Any]
    outcome: dict[str, Any]


def inbox_graph(saver: AsyncSqliteSaver) -> Any:
    """A graph written for the Agent Inbox: interrupt([HumanInterrupt]) -> [HumanResponse]."""

    def review(state: InboxState) -> InboxState:
        request = {
            "action_request": {"action": "send_email", "args": state["draft"]},
            "config": {
                "allow_ignore": True,
                "allow_respond": True,
                "allow_edit": True,
                "allow_accept": True,
            },
            "description": "Reply to ACME about INV-123",
        }
        [response] = interrupt([request])
        if response["type"] == "accept":
            return {"outcome": {"sent": response["args"]["args"]}}
        if response["type"] == "edit":
            return {"outcome": {"sent": response["args"]["args"]}}
        return {"outcome": {"type": response["type"], "feedback": response["args"]}}

    builder = StateGraph(InboxState)
    builder.add_node("review", review)
    builder.add_edge(START, "review")
    builder.add_edge("review", END)
    return builder.compile(checkpointer=saver)


@pytest.mark.parametrize("verdict", ["approve", "modify", "reject"])
async def test_agent_inbox_interrupts_round_trip(stack: Stack, verdict: str) -> None:
    config: Any = {"configurable": {"thread_id": "inbox-1"}}
    draft = {"to": "ap@acme.test", "body": "Paid INV-123."}
    async with (
        AsyncSqliteSaver.from_conn_string(stack.checkpoints) as saver,
        stack.client() as client,
    ):
        graph = inbox_graph(saver)
        await graph.ainvoke({"draft": draft}, config)
        [answer] = await submit_interrupts(client, graph, config, confidence=0.3)
    edited = {"tool_calls": [{"name": "send_email", "args": {**draft, "body": "Paid."}}]}
    await sam_decides(stack, answer.id, verdict, edited, "shorter", "wait")
    async with AsyncSqliteSaver.from_conn_string(stack.checkpoints) as saver:
        fresh = inbox_graph(saver)
        async with receiver_up(stack, fresh):
            await stack.svc.worker.drain()
        outcome = (await fresh.aget_state(config)).values["outcome"]
    if verdict == "approve":
        assert outcome == {"sent": draft}
    elif verdict == "modify":
        assert outcome == {"sent": {**draft, "body": "Paid."}}
    else:
        assert outcome == {
            "type": "response",
            "feedback": f"Rejected in Signoff by Sam: wait ({answer.id})",
        }


async def test_a_confident_interrupt_is_answered_at_once(
    stack: Stack, ledger: list[tuple[str, float]]
) -> None:
    config: Any = {"configurable": {"thread_id": "hitl-2"}}
    call = {"name": "pay_invoice", "args": {"invoice": "INV-8", "amount": 20.0}, "id": "c2"}
    async with (
        AsyncSqliteSaver.from_conn_string(stack.checkpoints) as saver,
        stack.client() as client,
    ):
        agent = hitl_agent(saver, AIMessage(content="", tool_calls=[call]), AIMessage("done"))
        await agent.ainvoke({"messages": [{"role": "user", "content": "pay INV-8"}]}, config)
        [answer] = await submit_interrupts(client, agent, config, confidence=0.95)
        state = await agent.aget_state(config)
    assert answer.lane == "autonomous" and not state.interrupts
    assert ledger == [("INV-8", 20.0)]


async def test_receiver_refuses_a_forged_webhook(stack: Stack) -> None:
    async with AsyncSqliteSaver.from_conn_string(stack.checkpoints) as saver:
        graph = inbox_graph(saver)
        async with receiver_up(stack, graph):
            forged = await WebhookResumeTarget().deliver(
                WebhookDelivery(
                    "msg_forged",
                    f"{stack.agent.url}/resume",
                    {"type": "request.resolved", "data": {"id": "req_x"}},
                    "whsec_" + base64.b64encode(b"not the agent's secret!!").decode(),
                    1,
                )
            )
    assert not forged.ok and forged.status_code == 401


# -- translation details (pure) ---------------------------------------------------------


def decided(status: str, payload: dict[str, Any] | None = None) -> Verdict:
    action = {"kind": "pay_invoice", "summary": "s", "payload": payload or {}}
    votes = (
        [{"verdict": "reject", "name": "Sam", "rationale": "no"}] if status == "rejected" else []
    )
    return Verdict(
        request_id="req_1",
        status=status,
        action=action,
        modified_action=action if status == "modified" else None,
        votes=votes,
        rationale="no" if status == "rejected" else "",
    )


HITL = {
    "action_requests": [{"name": "pay", "args": {"a": 1}, "description": "Pay?"}],
    "review_configs": [{"action_name": "pay", "allowed_decisions": ["approve", "reject"]}],
}


def test_an_edit_the_tool_does_not_allow_is_refused_not_approved() -> None:
    edited = decided("modified", {"tool_calls": [{"name": "pay", "args": {"a": 2}}]})
    [decision] = answer_for(HITL, edited)["decisions"]
    assert decision["type"] == "reject" and "does not accept edits" in decision["message"]
    unchanged = decided("modified", {"tool_calls": [{"name": "pay", "args": {"a": 1}}]})
    assert answer_for(HITL, unchanged) == {"decisions": [{"type": "approve"}]}


def test_an_unreadable_modification_is_refused_with_the_reason() -> None:
    [decision] = answer_for(HITL, decided("modified", {"amount": 3}))["decisions"]
    assert decision["type"] == "reject" and "'tool_calls'" in decision["message"]


def test_denials_in_each_format() -> None:
    assert answer_for(HITL, decided("rejected")) == {
        "decisions": [{"type": "reject", "message": "Rejected in Signoff by Sam: no (req_1)"}]
    }
    assert answer_for(HITL, decided("expired"))["decisions"][0]["message"] == (
        "Expired in Signoff without a verdict (req_1)"
    )
    inbox = [
        {
            "action_request": {"action": "pay", "args": {"a": 1}},
            "config": {
                "allow_ignore": True,
                "allow_respond": False,
                "allow_edit": False,
                "allow_accept": True,
            },
        }
    ]
    assert answer_for(inbox, decided("cancelled")) == [{"type": "ignore", "args": None}]
    assert answer_for(inbox, decided("approved")) == [
        {"type": "accept", "args": {"action": "pay", "args": {"a": 1}}}
    ]
    per_call = {"type": "tool_approval", "tool_call_id": "c", "name": "pay", "args": {"a": 1}}
    # A tool that only allows approve: a denial still answers reject, so LangGraph refuses it
    # loudly rather than the tool running unapproved.
    schema = {"properties": {"type": {"const": "approve"}}}
    assert answer_for(per_call, decided("rejected"), schema) == {
        "type": "reject",
        "message": "Rejected in Signoff by Sam: no (req_1)",
    }
