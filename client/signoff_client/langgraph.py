"""LangGraph and Signoff: an approval gate for graph nodes, the receiver that resumes a paused
graph when the human decides, and a bridge for interrupts in formats agents already use.

Needs the `langgraph` extra (`pip install 'signoff[langgraph]'`). A gate node::

    gate = SignoffGate(AsyncSignoffClient(SIGNOFF_URL, API_KEY))

    async def approval_gate(state: State) -> dict[str, Any]:
        verdict = await gate.ask(state["pending_action"], state["confidence"], amount=...)
        return {"verdict": verdict.model_dump()}

`ask` submits the decision with an Idempotency-Key derived from the thread, the node's task
and the action, so the replay of the node on resume gets the original answer back instead
of creating a second request. Autonomous and review lanes (and a stopped agent's instant
rejection) return at once; an escalated request pauses the graph with `interrupt()`, whose
value carries `signoff_request_id`. The agent mounts `ResumeReceiver` at its callback URL;
on the signed webhook it resumes the thread with `Command(resume=...)` and the gate returns
the human's `Verdict` (status, votes, rationale, modified action, action_sha256).

A graph paused by langchain's `HumanInTheLoopMiddleware` or in the Agent Inbox format gets
Signoff as its reviewer with `submit_interrupts(client, graph, config)` after each run: the
same receiver answers those interrupts in their own shape (see `signoff_client.hitl`).
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.config import get_config
from langgraph.pregel.protocol import PregelProtocol
from langgraph.types import Command, Interrupt, interrupt
from pydantic import BaseModel, ConfigDict
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from signoff_client._client import (
    Action,
    AsyncSignoffClient,
    ResumeEvent,
    RoutingAnswer,
    SignoffClient,
    WebhookVerificationError,
    verify_webhook,
)
from signoff_client.canonical import canonical_json, sha256_hex
from signoff_client.hitl import (
    GATE_KEY,
    Verdict,
    action_for,
    answer_for,
    description_for,
    interrupt_kind,
    interrupt_matches,
    verdict_from_answer,
    verdict_from_webhook,
)

log = logging.getLogger("signoff.langgraph")

Graph = PregelProtocol[Any, Any, Any, Any]

_MAX_ROUNDS = 50


def gate_key(thread_id: str, task: str, gate: str, action: Mapping[str, Any]) -> str:
    """The Idempotency-Key of a gate: the same on every replay of the same node task.

    `task` is the node's `checkpoint_ns` (node name and task id), which LangGraph keeps
    when it replays a node on resume and changes when the node runs again in a loop.
    """
    identity = {"thread": thread_id, "task": task, "gate": gate, "action": dict(action)}
    return "lgg_" + sha256_hex(canonical_json(identity))


def interrupt_key(thread_id: str, interrupt_id: str) -> str:
    """The Idempotency-Key of a foreign interrupt submitted by `submit_interrupts`."""
    return "lgi_" + sha256_hex(canonical_json({"thread": thread_id, "interrupt": interrupt_id}))


def _schema(waiting: Interrupt) -> Mapping[str, Any] | None:
    schema = waiting.response_schema
    return schema if isinstance(schema, Mapping) else None


def _action_json(action: Action | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(action, Action):
        return action.model_dump()
    return {
        "kind": str(action["kind"]),
        "summary": str(action["summary"]),
        "payload": dict(action.get("payload") or {}),
    }


class SignoffGate:
    """Asks Signoff from inside a LangGraph node; pauses the graph while a human decides.

    Give it an `AsyncSignoffClient` for `ask` (async nodes) or a `SignoffClient` for
    `ask_sync`. `name` tells two gates in one node apart.
    """

    def __init__(self, client: AsyncSignoffClient | SignoffClient, *, name: str = "gate") -> None:
        self.client = client
        self.name = name

    async def ask(
        self,
        action: Action | Mapping[str, Any],
        confidence: float,
        *,
        idempotency_key: str | None = None,
        **fields: Any,
    ) -> Verdict:
        """Submit the decision and return the verdict, pausing the graph if it must wait.

        `fields` are `request_approval`'s (amount, currency, reversible, domain, sentiment,
        requested_by, callback_url, labels, context); the thread id is the graph's own.
        Compute them from the state, not afresh on every run (no LLM call in the same
        node before the gate): the replay on resume must send the same body, or Signoff
        answers 409 (ConflictError) rather than guess which request was meant.

        Raises RuntimeError outside a graph node, ValueError without a `thread_id`,
        TypeError with a blocking client, and the client's SignoffAPIError branches.
        """
        if not isinstance(self.client, AsyncSignoffClient):
            raise TypeError("SignoffGate.ask needs an AsyncSignoffClient; use ask_sync")
        thread_id, action_json, key = self._prepare(action, idempotency_key)
        answer = await self.client.request_approval(
            action_json, confidence, thread_id=thread_id, idempotency_key=key, **fields
        )
        return self._decide(answer, action_json)

    def ask_sync(
        self,
        action: Action | Mapping[str, Any],
        confidence: float,
        *,
        idempotency_key: str | None = None,
        **fields: Any,
    ) -> Verdict:
        """`ask` for synchronous nodes, with a `SignoffClient`."""
        if not isinstance(self.client, SignoffClient):
            raise TypeError("SignoffGate.ask_sync needs a SignoffClient; use ask")
        thread_id, action_json, key = self._prepare(action, idempotency_key)
        answer = self.client.request_approval(
            action_json, confidence, thread_id=thread_id, idempotency_key=key, **fields
        )
        return self._decide(answer, action_json)

    def _prepare(
        self, action: Action | Mapping[str, Any], idempotency_key: str | None
    ) -> tuple[str, dict[str, Any], str]:
        configurable = get_config().get("configurable", {})
        thread_id = configurable.get("thread_id")
        if not thread_id:
            raise ValueError("SignoffGate needs config={'configurable': {'thread_id': ...}}")
        action_json = _action_json(action)
        task = str(configurable.get("checkpoint_ns", ""))
        key = idempotency_key or gate_key(str(thread_id), task, self.name, action_json)
        return str(thread_id), action_json, key

    @staticmethod
    def _decide(answer: RoutingAnswer, action: dict[str, Any]) -> Verdict:
        if answer.status != "pending":
            return verdict_from_answer(answer.model_dump(mode="json"), action)
        resumed = interrupt(
            {
                GATE_KEY: answer.id,
                "question": f"Approve: {action['summary']}?",
                "action": action,
                "lane": answer.lane,
                "risk": answer.risk,
                "tier": answer.tier,
                "reasons": list(answer.reasons),
                "approvals_required": answer.approvals_required,
            }
        )
        return _resumed_verdict(resumed, answer.id, action)


def _resumed_verdict(value: Any, request_id: str, action: dict[str, Any]) -> Verdict:
    """The verdict a gate was resumed with; a bare `{"status": ...}` is accepted too."""
    if isinstance(value, Verdict):
        value = value.model_dump()
    if not isinstance(value, Mapping) or "status" not in value:
        raise ValueError(f"resume the gate with a Signoff verdict, not {value!r}")
    if value.get("request_id", request_id) != request_id:
        raise ValueError(f"verdict of {value['request_id']} resumed the gate of {request_id}")
    return Verdict.model_validate({"request_id": request_id, "action": action, **value})


class ResumeOutcome(BaseModel):
    """What the receiver did with one webhook (also its JSON answer)."""

    model_config = ConfigDict(frozen=True)

    resumed: bool
    request_id: str
    thread_id: str | None = None
    interrupt_id: str | None = None
    kind: str | None = None
    detail: str = ""


class ResumeReceiver:
    """An ASGI app for the agent's callback URL: verifies Signoff's webhook, resumes the graph.

    Mount it (`app.mount("/signoff", receiver)` serves `POST /signoff/resume`) or serve it
    alone. `graph` is the compiled graph with its durable checkpointer, or a zero-argument
    callable returning it (for apps that build the graph in their lifespan). On a
    `request.resolved` event it reads the thread's state, finds the interrupt the request
    decides (Signoff's gate, a HumanInTheLoopMiddleware or an Agent Inbox interrupt) and
    resumes it with `Command(resume={interrupt_id: answer})`.

    Answers 200 with a `ResumeOutcome` (also when nothing waits: an autonomous request, or a
    retried webhook whose graph already moved on), 401 when verification fails, and 500
    when resuming raised (Signoff then retries). One resume per thread runs at a time in
    this process, so a retry racing a slow resume finds the interrupt answered.
    `on_event` is awaited after each verified event (e.g. to act on `request.reversed`).
    """

    def __init__(
        self,
        graph: Graph | Callable[[], Graph],
        secret: str,
        *,
        path: str = "/resume",
        on_event: Callable[[ResumeEvent, ResumeOutcome], Awaitable[None]] | None = None,
    ) -> None:
        self._graph = graph
        self._secret = secret
        self._on_event = on_event
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self.app = Starlette(routes=[Route(path, self._endpoint, methods=["POST"])])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)

    def graph(self) -> Graph:
        graph = self._graph
        return graph if isinstance(graph, PregelProtocol) else graph()

    async def _endpoint(self, request: Request) -> JSONResponse:
        body = await request.body()
        try:
            event = verify_webhook(request.headers, body, self._secret)
        except WebhookVerificationError as exc:
            return JSONResponse({"error": "invalid_webhook", "detail": str(exc)}, 401)
        try:
            outcome = await self.handle(event)
        except Exception as exc:  # answered 500 so that Signoff retries
            log.exception("resuming for %s failed", event.data.id)
            detail = f"{type(exc).__name__}: {exc}"
            return JSONResponse({"error": "resume_failed", "detail": detail}, 500)
        return JSONResponse(outcome.model_dump(), 200)

    async def handle(self, event: ResumeEvent) -> ResumeOutcome:
        """Resume the thread `event` decides (no HTTP: for tests, queues, other transports).

        Raises whatever resuming the graph raises.
        """
        data = event.data
        outcome = ResumeOutcome(resumed=False, request_id=data.id, thread_id=data.thread_id)
        if event.type != "request.resolved":
            outcome = outcome.model_copy(update={"detail": f"{event.type}: nothing to resume"})
        elif not data.thread_id:
            outcome = outcome.model_copy(update={"detail": "the request has no thread_id"})
        else:
            outcome = await self._resume(event, data.thread_id, outcome)
        if self._on_event is not None:
            await self._on_event(event, outcome)
        return outcome

    async def _resume(
        self, event: ResumeEvent, thread_id: str, base: ResumeOutcome
    ) -> ResumeOutcome:
        graph = self.graph()
        config: RunnableConfig = {"configurable": {"thread_id": thread_id}}
        data = event.data.model_dump(mode="json")
        lock = self._locks.setdefault(thread_id, asyncio.Lock())
        async with lock:
            state = await graph.aget_state(config)
            for waiting in state.interrupts:
                schema = _schema(waiting)
                if not interrupt_matches(waiting.value, data, schema):
                    continue
                verdict = verdict_from_webhook({"type": event.type, "data": data})
                answer = answer_for(waiting.value, verdict, schema)
                await graph.ainvoke(Command(resume={waiting.id: answer}), config)
                return base.model_copy(
                    update={
                        "resumed": True,
                        "interrupt_id": waiting.id,
                        "kind": interrupt_kind(waiting.value),
                        "detail": f"resumed with status {verdict.status}",
                    }
                )
        return base.model_copy(
            update={"detail": f"nothing on thread {thread_id} waits for {data['id']}"}
        )


async def submit_interrupts(
    client: AsyncSignoffClient,
    graph: Graph,
    config: RunnableConfig,
    *,
    confidence: float = 0.0,
    **fields: Any,
) -> list[RoutingAnswer]:
    """Hand a paused graph's HumanInTheLoopMiddleware and Agent Inbox interrupts to Signoff.

    Call it after each run that may have paused. Each waiting interrupt becomes one Signoff
    request (Idempotency-Key from the thread and the interrupt id, so calling this again
    is harmless); the reviewer's verdict comes back through `ResumeReceiver` in the
    interrupt's own format. Requests Signoff decides at once (e.g. `confidence` above the
    autonomous threshold) are answered here straight away, and the graph runs on until it
    finishes or every interrupt waits for a human. Signoff's own gate interrupts are left
    alone (the gate submitted them). `fields` go to `request_approval`.

    Returns the routing answer of every interrupt submitted. Raises the client's errors.
    """
    thread_id = str(config.get("configurable", {}).get("thread_id") or "")
    if not thread_id:
        raise ValueError("submit_interrupts needs config={'configurable': {'thread_id': ...}}")
    answers: dict[str, RoutingAnswer] = {}
    for _ in range(_MAX_ROUNDS):
        state = await graph.aget_state(config)
        ready: dict[str, Any] = {}
        for waiting in state.interrupts:
            if interrupt_kind(waiting.value) in (None, "signoff"):
                continue
            schema = _schema(waiting)
            action = action_for(waiting.value, schema)
            extra = dict(fields)
            extra.setdefault("context", {"summary": description_for(waiting.value)})
            answer = await client.request_approval(
                action,
                confidence,
                thread_id=thread_id,
                idempotency_key=interrupt_key(thread_id, waiting.id),
                **extra,
            )
            answers[answer.id] = answer
            if answer.status != "pending":
                verdict = verdict_from_answer(answer.model_dump(mode="json"), action)
                ready[waiting.id] = answer_for(waiting.value, verdict, schema)
        if not ready:
            break
        await graph.ainvoke(Command(resume=ready), config)
    return list(answers.values())


__all__ = [
    "ResumeOutcome",
    "ResumeReceiver",
    "SignoffGate",
    "Verdict",
    "gate_key",
    "interrupt_key",
    "submit_interrupts",
]
