"""How a Signoff request reads to an MCP client: the final verdict, its rationale, and the
progress line shown while a reviewer has not answered yet. Shared by the approval tools and
the gateway, and free of the MCP SDK so it can be read (and tested) on its own."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from pydantic import BaseModel, Field

from signoff_client._client import AsyncSignoffClient, RequestDetail, RoutingAnswer

PROCEED = frozenset({"approved", "modified"})

Progress = Callable[[float, str], Awaitable[None]]
"""Told the seconds waited so far and a line to show, between two long-polls."""


class VoteOut(BaseModel):
    reviewer: str
    name: str
    verdict: str
    rationale: str
    channel: str


class Verdict(BaseModel):
    """A request as the agent needs it: may it act, on which action, and why."""

    id: str
    status: Literal[
        "pending", "approved", "modified", "rejected", "expired", "cancelled", "reversed"
    ]
    final: bool = Field(description="false while reviewers may still answer")
    proceed: bool = Field(
        description="true when the agent may act now: execute `action` (approved or modified)"
    )
    action: dict[str, Any] = Field(
        description="the action to execute if proceed: the reviewer's edit after a modify"
    )
    modified: bool
    rationale: str = Field(description="why: the reviewers' rationale, or the policy's reasons")
    lane: str
    risk: str
    tier: str | None
    reasons: list[str]
    votes: list[VoteOut]
    decided_at: str | None
    deadline_at: str | None


def verdict_of(detail: RequestDetail) -> Verdict:
    return Verdict(
        id=detail.id,
        status=detail.status,
        final=detail.is_final,
        proceed=detail.status in PROCEED,
        action=detail.current_action.model_dump(),
        modified=detail.modified_action is not None,
        rationale=rationale(detail),
        lane=detail.lane,
        risk=detail.risk,
        tier=detail.tier,
        reasons=list(detail.reasons),
        votes=[
            VoteOut(
                reviewer=v.reviewer,
                name=v.name,
                verdict=v.verdict,
                rationale=v.rationale,
                channel=v.channel,
            )
            for v in detail.votes
        ],
        decided_at=detail.decided_at.isoformat() if detail.decided_at else None,
        deadline_at=detail.deadline_at.isoformat() if detail.deadline_at else None,
    )


def rationale(detail: RequestDetail) -> str:
    """The reviewers' own words when there are any (the deciding vote last), else what the
    status itself means: a timeout or a cancel has no vote to quote."""
    said = [f"{v.name or v.reviewer}: {v.rationale}" for v in detail.votes if v.rationale]
    if said:
        return "; ".join(said)
    if detail.status == "expired":
        return "no reviewer answered before the last tier's deadline"
    if detail.status == "cancelled":
        return "the request was withdrawn before a reviewer answered"
    if detail.status == "rejected" and detail.reasons:
        return "rejected by policy: " + ", ".join(detail.reasons)
    if detail.status == "approved" and not detail.votes:
        return "approved by policy: " + (", ".join(detail.reasons) or detail.lane)
    return ""


def answer_line(answer: RoutingAnswer) -> str:
    reasons = ", ".join(answer.reasons) or "none"
    return f"{answer.status} ({answer.lane} lane, {answer.risk} risk, reasons: {reasons})"


async def wait_final(
    signoff: AsyncSignoffClient,
    request_id: str,
    *,
    within: float | None,
    progress: Progress | None = None,
    poll: float = 10.0,
) -> RequestDetail:
    """Long-poll until the request is final or `within` seconds pass (None: until final).

    The server holds each poll; they are kept short (`poll`) so `progress` can be told
    between them, which keeps an MCP call that waits on a person visibly alive.
    """
    started = time.monotonic()
    while True:
        left = None if within is None else within - (time.monotonic() - started)
        hold = poll if left is None else max(min(poll, left), 0.0)
        detail = await signoff.wait(request_id, timeout=hold)
        waited = time.monotonic() - started
        if detail.is_final or (left is not None and left <= hold):
            return detail
        if progress is not None:
            tier = f" at tier {detail.tier}" if detail.tier else ""
            await progress(waited, f"waiting for a reviewer in Signoff: {detail.id}{tier}")
