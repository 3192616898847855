"""Signoff as the approver of OpenAI Agents SDK tool calls (extra `openai-agents`).

The SDK pauses a run when a tool's `needs_approval` says so and hands back the paused calls
as `result.interruptions`; the run is resumed from its `RunState` (also in a fresh process,
through `state.to_string()` / `RunState.from_string`) once each call is approved or
rejected. `SignoffApprovals` puts Signoff's policy and reviewers behind both ends::

    signoff = SignoffApprovals(AsyncSignoffClient(url, key), thread_id="conv-42")

    @function_tool(needs_approval=signoff.needs_approval("pay_invoice"))
    async def pay_invoice(invoice: str, amount: float) -> str: ...

    result = await Runner.run(agent, "Pay INV-7")
    if result.interruptions:                     # Signoff escalated: a person decides
        await signoff.submit(result.interruptions)
        saved = result.to_state().to_string()    # keep it; the process may end here
        ...
        state = await RunState.from_string(agent, saved)
        state = await signoff.resolve(state)     # waits for the verdicts
        result = await Runner.run(agent, state)

Each tool call is submitted as `action.kind = "tool:<name>"` with the call's arguments as
the payload. Autonomous and review-lane answers need no approval (the tool runs at once);
an escalation pauses the run. `resolve` finds each paused call's request again through its
Idempotency-Key (thread, call id and arguments), so nothing but the run state needs keeping,
and approves the call, or rejects it with the reviewer's rationale as the message the model
reads. A reviewer's modify cannot change a paused call's arguments in the SDK, so it is
returned to the model as a rejection that states the approved arguments, for it to call the
tool again with them (that new call is then submitted and approved like any other).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from agents import RunContextWrapper, RunState, ToolApprovalItem

from signoff_client._client import AsyncSignoffClient, RequestDetail, RoutingAnswer
from signoff_client.canonical import canonical_json, sha256_hex

NeedsApproval = Callable[[RunContextWrapper[Any], dict[str, Any], str], Awaitable[bool]]

KIND_PREFIX = "tool:"


def _summary(tool: str, arguments: Mapping[str, Any]) -> str:
    text = f"{tool}({canonical_json(dict(arguments))})"
    return text if len(text) <= 300 else text[:297] + "..."


class SignoffApprovals:
    """Asks Signoff about each tool call of a run and resolves the paused ones.

    `thread_id` names the conversation (the same on every run that continues it);
    `confidence` is what the agent claims for its calls (default 1.0: policy rules alone
    decide, as for any action the agent is sure of); `describe(tool, arguments)` may return
    extra request fields (`amount`, `currency`, `reversible`, `domain`, `labels`, `context`).
    """

    def __init__(
        self,
        client: AsyncSignoffClient,
        *,
        thread_id: str,
        confidence: float = 1.0,
        describe: Callable[[str, Mapping[str, Any]], Mapping[str, Any]] | None = None,
    ) -> None:
        self._client = client
        self._thread_id = thread_id
        self._confidence = confidence
        self._describe = describe

    def _key(self, tool: str, call_id: str, arguments: Mapping[str, Any]) -> str:
        digest = sha256_hex(
            canonical_json(
                {"thread": self._thread_id, "call": call_id, "tool": tool, "args": arguments}
            )
        )
        return f"sgn_oai_{digest}"

    async def ask(self, tool: str, arguments: Mapping[str, Any], call_id: str) -> RoutingAnswer:
        """Submit one tool call (idempotent: the same call asks once)."""
        extra = dict(self._describe(tool, arguments)) if self._describe else {}
        return await self._client.request_approval(
            {
                "kind": KIND_PREFIX + tool,
                "summary": _summary(tool, arguments),
                "payload": dict(arguments),
            },
            self._confidence,
            thread_id=self._thread_id,
            idempotency_key=self._key(tool, call_id, arguments),
            **extra,
        )

    def needs_approval(self, tool: str) -> NeedsApproval:
        """The `needs_approval=` callable for one function tool named `tool`."""

        async def check(
            _context: RunContextWrapper[Any], arguments: dict[str, Any], call_id: str
        ) -> bool:
            answer = await self.ask(tool, arguments, call_id)
            return answer.status != "approved"

        return check

    async def submit(self, items: Sequence[ToolApprovalItem]) -> list[RoutingAnswer]:
        """Make sure every paused call has its Signoff request; returns their answers.

        Call it when a run pauses, before saving its state: the SDK asks `needs_approval`
        only when it can hand over the arguments exactly as the model sent them (an integer
        for a float parameter, a default filled in, a validator) and otherwise pauses the call
        without asking, so such a call reaches the reviewers here. Idempotent.
        """
        return [await self.ask(*_call_of(item)) for item in items]

    async def verdict(
        self, item: ToolApprovalItem, *, wait_for: float | None = None
    ) -> RequestDetail:
        """The Signoff request behind one paused call, waited on until final (or `wait_for`
        seconds)."""
        tool, arguments, call_id = _call_of(item)
        answer = await self.ask(tool, arguments, call_id)
        if answer.status != "pending":
            return await self._client.get(answer.id)
        return await self._client.wait(answer.id, timeout=wait_for)

    async def resolve(
        self, state: RunState[Any, Any], *, wait_for: float | None = None
    ) -> RunState[Any, Any]:
        """Approve or reject every paused call of `state` by its verdict; returns `state`.

        Waits for each verdict up to `wait_for` seconds (None: until final). A call whose
        request is still pending afterwards is left paused: run `resolve` again later.
        """
        for item in state.get_interruptions():
            detail = await self.verdict(item, wait_for=wait_for)
            if detail.status == "pending":
                continue
            if detail.status == "approved":
                state.approve(item)
            elif detail.status == "modified" and detail.modified_action is not None:
                state.reject(item, rejection_message=_modified_message(detail))
            else:
                state.reject(item, rejection_message=_rejected_message(detail))
        return state


def _call_of(item: ToolApprovalItem) -> tuple[str, dict[str, Any], str]:
    raw = item.raw_item
    get = raw.get if isinstance(raw, dict) else lambda key: getattr(raw, key, None)
    arguments = get("arguments") or "{}"
    parsed = json.loads(arguments) if isinstance(arguments, str) else dict(arguments)
    return str(item.tool_name or get("name")), parsed, str(get("call_id"))


def _rationale(detail: RequestDetail) -> str:
    for vote in reversed(detail.votes):
        if vote.rationale:
            return vote.rationale
    return ""


def _rejected_message(detail: RequestDetail) -> str:
    why = _rationale(detail)
    outcome = {
        "rejected": "rejected",
        "expired": "expired without a decision",
        "cancelled": "cancelled",
    }.get(detail.status, detail.status)
    text = f"A human reviewer {outcome} this tool call (Signoff request {detail.id})."
    return f"{text} Reason: {why}" if why else text


def _modified_message(detail: RequestDetail) -> str:
    assert detail.modified_action is not None
    payload = canonical_json(detail.modified_action.payload)
    why = _rationale(detail)
    text = (
        "A human reviewer changed this tool call's arguments (Signoff request "
        f"{detail.id}). Call the tool again with exactly these arguments: {payload}"
    )
    return f"{text}. Reason: {why}" if why else text


__all__ = ["KIND_PREFIX", "NeedsApproval", "SignoffApprovals"]
