"""Pure transitions of a request: what a routing decision makes of a submission, who may
vote, what a vote does, and what time does (escalation, timeout, a window restarted).

State, input and time in, the new state out: no I/O, no clock, no policy lookups beyond
the values handed in. `Engine` (bot.engine.machine) reads, calls these, and writes the
result with its outbox rows and audit events in one transaction.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.core.domain import (
    POLICY_ACTOR,
    STOPPED_REASON,
    Action,
    ApprovalRequest,
    ReasonText,
    ReviewStatus,
    Status,
    TierMove,
    Verdict,
    Vote,
    isoformat,
)
from bot.core.errors import NotAllowed
from bot.core.people import People
from routing import ReviewState, Risk, RoutingDecision, TierSpec, TimeoutAction
from signoff_client.submission import Submission

REVIEW_VERDICTS = frozenset({Verdict.CONFIRM, Verdict.REVERSE})
# Verdicts that count as the voter's approval of the action they are bound to.
APPROVING = frozenset({Verdict.APPROVE, Verdict.MODIFY, Verdict.RESPOND})


@dataclass(frozen=True)
class Voter:
    """Who clicks, as the rules see them: the identity, and whether they may act at the
    request's tier (the policy's answer, groups included)."""

    reviewer: str
    may_act: bool


def refusal(
    request: ApprovalRequest,
    voter: Voter,
    verdict: Verdict,
    *,
    people: People,
    owner: str | None,
) -> NotAllowed | None:
    """Why `voter` may not cast `verdict` on `request` now, or None when they may.

    `owner` is the agent's owner: that person never decides its requests.
    """
    reviewer = voter.reviewer
    if verdict in REVIEW_VERDICTS:
        if request.review_status is not ReviewStatus.OPEN:
            return NotAllowed(
                "already_decided",
                f"this item's review is already closed ({decided_by(request)})",
            )
    elif request.status is Status.REJECTED and STOPPED_REASON in request.reasons:
        return NotAllowed(
            "agent_stopped",
            f"agent stopped: agent {request.agent_id} was stopped, which rejected this item",
        )
    elif request.status is not Status.PENDING:
        return NotAllowed(
            "already_decided",
            f"this item is already {request.status.value} ({decided_by(request)})",
        )
    # People, not accounts: another identity of the requester or owner is them too.
    if people.same(reviewer, request.requested_by):
        return NotAllowed("self_approval", "you requested this action, so you cannot decide it")
    if people.same(reviewer, owner):
        return NotAllowed(
            "agent_owner",
            f"you own agent {request.agent_id}, so you cannot decide its requests",
        )
    if not voter.may_act:
        return NotAllowed(
            "not_a_reviewer", f"you are not a reviewer of tier {request.tier} or above"
        )
    # One vote per person per action: after a modify, the people whose approvals it
    # voided may approve the new action (else a two-person item could deadlock).
    person = people.person_of(reviewer)
    digest = request.current_action.sha256
    for earlier in request.votes:
        if earlier.action_sha256 != digest or people.person_of(earlier.reviewer) != person:
            continue
        if earlier.reviewer == reviewer:
            return NotAllowed("second_vote", "you have already voted on this item")
        return NotAllowed("second_vote", f"already voted as {earlier.reviewer}")
    return None


def rationale_required(request: ApprovalRequest, verdict: Verdict) -> bool:
    """Reject, modify and reverse always need a reason; every verdict on high risk does."""
    return verdict in (Verdict.REJECT, Verdict.MODIFY, Verdict.REVERSE) or (
        request.risk is Risk.HIGH
    )


@dataclass(frozen=True)
class Cast:
    """One verdict as the voter gave it."""

    reviewer: str
    name: str
    verdict: Verdict
    rationale: str
    channel: str
    modified_payload: Mapping[str, Any] | None = None
    response: Any = None


def cast_vote(
    request: ApprovalRequest, cast: Cast, *, people: People, now: datetime
) -> tuple[ApprovalRequest, Vote]:
    """The request after `cast` (checked with `refusal` first), and the vote it records.

    A reject ends it rejected; approvals of the current action by enough different people
    end it approved (modified, after an edit); confirm and reverse close the review.
    """
    modified_action = request.modified_action
    if cast.verdict is Verdict.MODIFY:
        current = request.current_action
        modified_action = Action(current.kind, current.summary, dict(cast.modified_payload or {}))
    target = modified_action or request.action
    vote = Vote(
        cast.reviewer,
        cast.name,
        cast.verdict,
        cast.rationale,
        now,
        cast.channel,
        target.sha256,
        people.person_of(cast.reviewer),
        cast.response if cast.verdict is Verdict.RESPOND else None,
    )
    updated = dataclasses.replace(
        request, votes=(*request.votes, vote), modified_action=modified_action, updated_at=now
    )
    if cast.verdict is Verdict.REJECT:
        return finish(updated, Status.REJECTED, now), vote
    if cast.verdict in APPROVING:
        approvals = {people.person_of(v.reviewer) for v in updated.approvals_for_current_action()}
        if len(approvals) >= updated.approvals_required:
            final = Status.MODIFIED if updated.modified_action else Status.APPROVED
            return finish(updated, final, now), vote
        return updated, vote
    if cast.verdict is Verdict.CONFIRM:
        return dataclasses.replace(updated, review_status=ReviewStatus.CONFIRMED), vote
    reversed_ = dataclasses.replace(
        updated, status=Status.REVERSED, review_status=ReviewStatus.REVERSED, decided_at=now
    )
    return reversed_, vote


def admit(
    new: Submission,
    *,
    request_id: str,
    agent_id: str,
    action: Action,
    decision: RoutingDecision,
    tier: TierSpec | None,
    now: datetime,
    predicted_escalation: float | None = None,
    reason_texts: tuple[ReasonText, ...] = (),
) -> ApprovalRequest:
    """The request a routing decision makes of a submission: final at once (approved, or
    rejected for a stopped agent), or pending at the decision's tier with that tier's
    window and reminder. `tier` is the decision's tier's spec, when it names one."""
    pending = decision.status == "pending"
    status = Status(decision.status)
    return ApprovalRequest(
        id=request_id,
        agent_id=agent_id,
        action=action,
        confidence=new.confidence,
        status=status,
        lane=decision.lane,
        risk=decision.risk,
        reasons=tuple(decision.reasons),
        tier=decision.tier,
        approvals_required=decision.approvals_required,
        review=decision.review,
        created_at=now,
        updated_at=now,
        thread_id=new.thread_id,
        amount=new.amount,
        currency=new.currency,
        reversible=new.reversible,
        domain=new.domain,
        sentiment=new.sentiment,
        requested_by=new.requested_by,
        callback_url=new.callback_url,
        labels=dict(new.labels),
        context=new.context.model_dump(),
        review_status=ReviewStatus.OPEN if decision.review is ReviewState.QUEUED else None,
        decided_at=None if pending else now,
        deadline_at=now + tier.sla if pending and tier else None,
        remind_at=now + tier.remind_after if pending and tier and tier.remind_after else None,
        history=(TierMove(None, decision.tier, now, "start"),) if decision.tier else (),
        predicted_escalation=predicted_escalation,
        cost=new.cost,
        reason_texts=reason_texts,
        question=new.question,
        response_schema=new.response_schema,
        reject_options=tuple(new.reject_options),
    )


def overdue(request: ApprovalRequest, now: datetime) -> bool:
    """A pending request at a tier whose SLA has passed."""
    return (
        request.status is Status.PENDING
        and request.deadline_at is not None
        and request.deadline_at <= now
        and request.tier is not None
    )


def escalate(
    request: ApprovalRequest, to: TierSpec, now: datetime
) -> tuple[ApprovalRequest, TierMove]:
    """`request` moved up to tier `to` at `now`, with that tier's whole window.

    A tier's SLA counts from the moment the item reached it: after downtime an overdue item
    moves one tier and gets that tier's window (and reminder), instead of running up the
    chain to on_timeout in a few sweeps.
    """
    move = TierMove(request.tier, to.name, now, "sla")
    moved = dataclasses.replace(
        request,
        tier=to.name,
        deadline_at=now + to.sla,
        remind_at=now + to.remind_after if to.remind_after else None,
        history=(*request.history, move),
        updated_at=now,
    )
    return moved, move


def missed_while_down(request: ApprovalRequest, last_tier: bool, started_at: datetime) -> bool:
    """Whether an overdue request's last-tier window ran out before this process started:
    while the service was down its reviewers never had it, so it must not time out yet."""
    return last_tier and request.deadline_at is not None and request.deadline_at < started_at


def restart_window(request: ApprovalRequest, tier: TierSpec, now: datetime) -> ApprovalRequest:
    """`request` given its tier's whole window (and reminder) again from `now`."""
    return dataclasses.replace(
        request,
        deadline_at=now + tier.sla,
        remind_at=now + tier.remind_after if tier.remind_after else None,
        updated_at=now,
    )


_TIMEOUT_STATUS = {
    TimeoutAction.REJECT: Status.REJECTED,
    TimeoutAction.EXPIRE: Status.EXPIRED,
    TimeoutAction.APPROVE: Status.APPROVED,
}


def time_out(
    request: ApprovalRequest, action: TimeoutAction, now: datetime
) -> tuple[ApprovalRequest, Vote | None]:
    """`request` ended by `on_timeout` past its last tier: rejected, expired, or approved
    with the policy's own vote (never a person's)."""
    status = _TIMEOUT_STATUS[action]
    vote = None
    if status is Status.APPROVED:
        vote = Vote(
            POLICY_ACTOR,
            "on_timeout policy",
            Verdict.APPROVE,
            "approved by on_timeout policy after the last tier's SLA",
            now,
            POLICY_ACTOR,
            request.current_action.sha256,
        )
        request = dataclasses.replace(request, votes=(*request.votes, vote))
    return finish(request, status, now), vote


def finish(request: ApprovalRequest, status: Status, now: datetime) -> ApprovalRequest:
    """`request` ended with `status` at `now`: no deadline or reminder left, review closed."""
    return dataclasses.replace(
        request,
        status=status,
        decided_at=now,
        deadline_at=None,
        remind_at=None,
        updated_at=now,
        review_status=ReviewStatus.CLOSED
        if request.review_status is ReviewStatus.OPEN
        else request.review_status,
    )


def decided_by(request: ApprovalRequest) -> str:
    """Who decided last and when, for a refusal's message."""
    if request.votes:
        last = request.votes[-1]
        return f"{last.verdict.value} by {last.name} at {isoformat(last.at)}"
    return f"{request.status.value} at {isoformat(request.decided_at)}"
