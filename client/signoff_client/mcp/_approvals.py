"""`signoff mcp serve`: Signoff's agent API as three MCP tools for any MCP client."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, Field

from signoff_client._client import AsyncSignoffClient, SignoffAPIError
from signoff_client.mcp._verdicts import Verdict, verdict_of, wait_final

WAIT_MAX = 300.0
"""One `wait_for_approval` call holds at most this long; MCP clients time calls out."""

INSTRUCTIONS = (
    "Signoff is the human approval step for this agent. Before any action that spends money, "
    "changes or deletes data, contacts people, or that you are not sure about, call "
    "request_approval and act only when its answer (or a later wait_for_approval) has "
    "proceed=true, executing exactly the returned `action`. Never act on a rejected, expired "
    "or cancelled request."
)


class ActionIn(BaseModel):
    kind: str = Field(description="what kind of action, e.g. payment, refund, send_email")
    summary: str = Field(description="one line a reviewer reads: what will be done to whom")
    payload: dict[str, Any] = Field(
        default_factory=dict,
        description="the exact parameters you will execute; a reviewer may edit them",
    )


class Submitted(BaseModel):
    id: str
    status: Literal["approved", "pending", "rejected"]
    lane: str
    risk: str
    reasons: list[str]
    tier: str | None
    approvals_required: int
    review: str
    proceed: bool = Field(description="true: act now, executing verdict.action")
    verdict: Verdict | None = Field(
        description="the final answer when there is one at once (approved or rejected); "
        "null while pending: call wait_for_approval"
    )


def approval_server(signoff: AsyncSignoffClient, *, agent: str) -> MCPServer:
    """An MCP server whose tools ask `signoff` on behalf of `agent` (the key's agent)."""
    server = MCPServer(
        name="signoff",
        title="Signoff approvals",
        instructions=INSTRUCTIONS,
        version="1",
    )

    @server.tool(
        description=(
            "Ask a human (through Signoff) whether you may perform an action. Call this "
            "BEFORE any consequential action: moving money, changing or deleting records, "
            "messaging customers, anything irreversible, or anything you are unsure of. "
            "If `proceed` is true, execute exactly `verdict.action` now. If `status` is "
            "`pending`, do not act: call wait_for_approval with the returned `id` until the "
            "answer is final. If `status` is `rejected`, do not act."
        )
    )
    async def request_approval(
        action: ActionIn,
        confidence: Annotated[float, Field(ge=0, le=1, description="your confidence, 0..1")],
        thread_id: Annotated[
            str | None, Field(description="your conversation or task id; repeats are deduplicated")
        ] = None,
        amount: Annotated[float | None, Field(description="money involved, if any")] = None,
        currency: str | None = None,
        reversible: Annotated[bool | None, Field(description="can it be undone?")] = None,
        domain: Annotated[str | None, Field(description="e.g. financial, legal, medical")] = None,
        sentiment: Annotated[float | None, Field(ge=-1, le=1)] = None,
        requested_by: Annotated[
            str | None, Field(description="the person who asked you, as platform:id")
        ] = None,
        callback_url: Annotated[
            str | None, Field(description="where Signoff posts the signed verdict, if anywhere")
        ] = None,
        labels: dict[str, Any] | None = None,
        context: Annotated[
            dict[str, Any] | None,
            Field(description="what the reviewer should read: summary, goal, recommendation"),
        ] = None,
    ) -> Submitted:
        try:
            answer = await signoff.request_approval(
                action.model_dump(),
                confidence,
                thread_id=thread_id,
                amount=amount,
                currency=currency,
                reversible=reversible,
                domain=domain,
                sentiment=sentiment,
                requested_by=requested_by,
                callback_url=callback_url,
                labels=labels,
                context=context,
            )
            verdict = (
                None if answer.status == "pending" else verdict_of(await signoff.get(answer.id))
            )
        except SignoffAPIError as exc:
            raise ToolError(f"Signoff refused the request: {exc}") from exc
        return Submitted(
            id=answer.id,
            status=answer.status,
            lane=answer.lane,
            risk=answer.risk,
            reasons=list(answer.reasons),
            tier=answer.tier,
            approvals_required=answer.approvals_required,
            review=answer.review,
            proceed=answer.proceed,
            verdict=verdict,
        )

    @server.tool(
        description=(
            "Wait for the human verdict on a pending request_approval (long-poll, at most "
            f"{int(WAIT_MAX)} seconds per call). Call it after request_approval answered "
            "`pending`, and again while `final` is false. When `proceed` is true execute "
            "exactly `action` (a reviewer may have modified it); otherwise do not act, and "
            "tell the user the `rationale`."
        )
    )
    async def wait_for_approval(
        request_id: str,
        ctx: Context,
        timeout_seconds: Annotated[
            float, Field(ge=0, le=WAIT_MAX, description="how long to wait in this call")
        ] = 50,
    ) -> Verdict:
        async def progress(waited: float, line: str) -> None:
            await ctx.report_progress(waited, timeout_seconds, line)

        try:
            detail = await wait_final(
                signoff, request_id, within=timeout_seconds, progress=progress
            )
        except SignoffAPIError as exc:
            raise ToolError(f"Signoff could not wait for {request_id}: {exc}") from exc
        return verdict_of(detail)

    @server.tool(
        description=(
            "Read a Signoff approval request now, without waiting: its status, whether you "
            "may proceed, the action to execute, the reviewers' votes and rationale. Use it "
            "to check a request you submitted earlier (for example after a restart)."
        )
    )
    async def get_approval(request_id: str) -> Verdict:
        try:
            return verdict_of(await signoff.get(request_id))
        except SignoffAPIError as exc:
            raise ToolError(f"Signoff has no answer for {request_id}: {exc}") from exc

    return server
