"""The pure transitions (bot.engine.transitions): every rule of who may vote and what a vote
does, branch by branch."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from bot.core.domain import (
    STOPPED_REASON,
    Action,
    ApprovalRequest,
    ReasonText,
    ReviewStatus,
    Status,
    Verdict,
)
from bot.core.people import People, Person
from bot.engine.transitions import (
    Cast,
    Voter,
    admit,
    cast_vote,
    decided_by,
    escalate,
    finish,
    missed_while_down,
    overdue,
    rationale_required,
    refusal,
    restart_window,
    time_out,
)
from routing import Lane, ReviewState, Risk, RoutingDecision, TierSpec, TimeoutAction
from signoff_client.submission import Submission

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
LATER = NOW + timedelta(minutes=5)
PEOPLE = People.of([Person("ana", "Ana", ("web:ana", "slack:U0ANA"))])


def pending(**fields: object) -> ApprovalRequest:
    values: dict[str, object] = {
        "id": "req_1",
        "agent_id": "bot",
        "action": Action("payment", "Pay INV-1", {"amount": 950}),
        "confidence": 0.4,
        "status": Status.PENDING,
        "lane": Lane.ESCALATE,
        "risk": Risk.MEDIUM,
        "reasons": ("low_confidence",),
        "tier": "junior",
        "approvals_required": 1,
        "review": ReviewState.NONE,
        "created_at": NOW,
        "updated_at": NOW,
        "deadline_at": NOW + timedelta(hours=1),
        "remind_at": NOW + timedelta(minutes=30),
        **fields,
    }
    return ApprovalRequest(**values)  # type: ignore[arg-type]


def check(request: ApprovalRequest, reviewer: str = "web:bo", **options: object) -> str | None:
    verdict = options.pop("verdict", Verdict.APPROVE)
    may_act = bool(options.pop("may_act", True))
    owner = options.pop("owner", None)
    refused = refusal(
        request,
        Voter(reviewer, may_act),
        verdict,  # type: ignore[arg-type]
        people=PEOPLE,
        owner=owner,  # type: ignore[arg-type]
    )
    return None if refused is None else refused.code


def vote(
    request: ApprovalRequest, reviewer: str, verdict: Verdict, **more: object
) -> ApprovalRequest:
    cast = Cast(reviewer, reviewer.split(":")[1], verdict, "why", "web", **more)  # type: ignore[arg-type]
    updated, _ = cast_vote(request, cast, people=PEOPLE, now=LATER)
    return updated


# -- refusal ---------------------------------------------------------------------------------


def test_a_pending_item_takes_a_vote_from_a_reviewer_of_its_tier() -> None:
    assert check(pending()) is None


def test_reviews_take_confirm_and_reverse_only_while_open() -> None:
    done = pending(status=Status.APPROVED, review_status=ReviewStatus.OPEN)
    assert check(done, verdict=Verdict.CONFIRM) is None
    closed = dataclasses.replace(done, review_status=ReviewStatus.CONFIRMED)
    assert check(closed, verdict=Verdict.REVERSE) == "already_decided"


def test_a_decided_or_stopped_item_takes_no_more_votes() -> None:
    stopped = pending(status=Status.REJECTED, reasons=(STOPPED_REASON,))
    assert check(stopped) == "agent_stopped"
    decided = vote(pending(), "web:bo", Verdict.APPROVE)
    refused = refusal(decided, Voter("web:cy", True), Verdict.REJECT, people=PEOPLE, owner=None)
    assert refused is not None and refused.code == "already_decided"
    assert "approve by bo at 2026-12-07T09:05:00Z" in refused.message


def test_the_requester_and_the_owner_never_decide_under_any_identity() -> None:
    assert check(pending(requested_by="web:ana"), "slack:U0ANA") == "self_approval"
    assert check(pending(), "slack:U0ANA", owner="web:ana") == "agent_owner"


def test_only_reviewers_of_the_tier_or_above_decide() -> None:
    assert check(pending(), may_act=False) == "not_a_reviewer"


def test_one_vote_per_person_per_action() -> None:
    two = pending(approvals_required=2)
    after = vote(two, "web:ana", Verdict.APPROVE)
    assert check(after, "web:ana") == "second_vote"
    refused = refusal(after, Voter("slack:U0ANA", True), Verdict.APPROVE, people=PEOPLE, owner=None)
    assert refused is not None and refused.message == "already voted as web:ana"
    assert check(after, "web:bo") is None  # another person
    edited = vote(two, "web:bo", Verdict.MODIFY, modified_payload={"amount": 900})
    assert check(edited, "web:ana") is None  # ana never voted on the edited action
    assert check(edited, "web:bo") == "second_vote"


# -- rationale -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("risk", "verdict", "needed"),
    [
        (Risk.LOW, Verdict.APPROVE, False),
        (Risk.LOW, Verdict.RESPOND, False),
        (Risk.LOW, Verdict.REJECT, True),
        (Risk.MEDIUM, Verdict.MODIFY, True),
        (Risk.MEDIUM, Verdict.REVERSE, True),
        (Risk.HIGH, Verdict.APPROVE, True),
    ],
)
def test_when_a_rationale_is_required(risk: Risk, verdict: Verdict, needed: bool) -> None:
    assert rationale_required(pending(risk=risk), verdict) is needed


# -- what a vote does ------------------------------------------------------------------------


def test_one_reject_ends_it() -> None:
    rejected = vote(pending(approvals_required=2), "web:bo", Verdict.REJECT)
    assert rejected.status is Status.REJECTED and rejected.decided_at == LATER
    assert rejected.deadline_at is None and rejected.remind_at is None


def test_approvals_by_enough_different_people_approve_it() -> None:
    two = pending(approvals_required=2)
    once = vote(two, "web:ana", Verdict.APPROVE)
    assert once.status is Status.PENDING and len(once.votes) == 1
    assert once.votes[0].person == "ana" and once.votes[0].response is None
    twice = vote(once, "web:bo", Verdict.APPROVE)
    assert twice.status is Status.APPROVED and twice.decided_at == LATER


def test_a_modify_binds_to_the_edited_action_and_ends_it_modified() -> None:
    edited = vote(pending(), "web:bo", Verdict.MODIFY, modified_payload={"amount": 900})
    assert edited.status is Status.MODIFIED
    assert edited.current_action.payload == {"amount": 900}
    assert edited.votes[0].action_sha256 == edited.current_action.sha256


def test_an_answer_counts_as_an_approval_and_is_kept_only_for_respond() -> None:
    answered = vote(pending(), "web:bo", Verdict.RESPOND, response={"account": "ops"})
    assert answered.status is Status.APPROVED and answered.response == {"account": "ops"}
    plain = vote(pending(), "web:bo", Verdict.APPROVE, response="ignored")
    assert plain.votes[0].response is None


def test_confirm_and_reverse_close_the_review() -> None:
    reviewed = pending(
        status=Status.APPROVED, review_status=ReviewStatus.OPEN, decided_at=NOW, tier=None
    )
    confirmed = vote(reviewed, "web:bo", Verdict.CONFIRM)
    assert confirmed.review_status is ReviewStatus.CONFIRMED
    assert confirmed.status is Status.APPROVED
    reversed_ = vote(reviewed, "web:bo", Verdict.REVERSE)
    assert reversed_.status is Status.REVERSED
    assert reversed_.review_status is ReviewStatus.REVERSED and reversed_.decided_at == LATER


def test_finishing_closes_an_open_review_and_leaves_others_alone() -> None:
    assert finish(
        pending(review_status=ReviewStatus.OPEN), Status.APPROVED, LATER
    ).review_status is (ReviewStatus.CLOSED)
    assert finish(pending(), Status.EXPIRED, LATER).review_status is None


def test_decided_by_names_the_last_voter_or_the_status() -> None:
    assert decided_by(finish(pending(), Status.EXPIRED, LATER)) == "expired at 2026-12-07T09:05:00Z"


# -- time ------------------------------------------------------------------------------------


def test_only_a_pending_item_past_its_deadline_at_a_tier_is_overdue() -> None:
    due = pending(deadline_at=NOW)
    assert overdue(due, NOW)
    assert not overdue(due, NOW - timedelta(seconds=1))
    assert not overdue(pending(deadline_at=None), LATER)
    assert not overdue(pending(deadline_at=NOW, tier=None), LATER)
    assert not overdue(finish(due, Status.APPROVED, NOW), LATER)


def test_escalation_moves_one_tier_with_that_tiers_whole_window() -> None:
    senior = TierSpec(name="senior", sla=timedelta(hours=1), remind_after=timedelta(minutes=20))
    moved, move = escalate(pending(), senior, LATER)
    assert (move.from_tier, move.to_tier, move.reason, move.at) == (
        "junior",
        "senior",
        "sla",
        LATER,
    )
    assert moved.tier == "senior" and moved.history[-1] == move
    assert moved.deadline_at == LATER + timedelta(hours=1)
    assert moved.remind_at == LATER + timedelta(minutes=20)
    quiet = TierSpec(name="manager", sla=timedelta(hours=4))
    assert escalate(moved, quiet, LATER)[0].remind_at is None


@pytest.mark.parametrize(
    ("action", "status"),
    [
        (TimeoutAction.REJECT, Status.REJECTED),
        (TimeoutAction.EXPIRE, Status.EXPIRED),
        (TimeoutAction.APPROVE, Status.APPROVED),
    ],
)
def test_the_last_tiers_deadline_ends_the_item_as_on_timeout_says(
    action: TimeoutAction, status: Status
) -> None:
    ended, vote = time_out(pending(), action, LATER)
    assert ended.status is status and ended.decided_at == LATER and ended.deadline_at is None
    if status is Status.APPROVED:
        assert vote is not None and vote.reviewer == "policy" and ended.votes == (vote,)
        assert vote.action_sha256 == ended.current_action.sha256
    else:
        assert vote is None and ended.votes == ()


# -- admit: what a routing decision makes of a submission ------------------------------------

SUBMISSION = Submission.model_validate(
    {
        "action": {"kind": "payment", "summary": "Pay INV-1", "payload": {"amount": 950}},
        "confidence": 0.4,
        "thread_id": "t-1",
        "amount": 950,
        "currency": "EUR",
        "requested_by": "web:ana",
        "labels": {"team": "ap"},
        "context": {"summary": "An invoice"},
        "cost": 0.02,
        "question": "Which account?",
        "reject_options": ["duplicate"],
    }
)
JUNIOR = TierSpec(name="junior", sla=timedelta(hours=1), remind_after=timedelta(minutes=20))


def decision(**fields: object) -> RoutingDecision:
    values: dict[str, object] = {
        "status": "pending",
        "lane": Lane.ESCALATE,
        "risk": Risk.MEDIUM,
        "reasons": ("low_confidence",),
        "tier": "junior",
        "approvals_required": 2,
        "review": ReviewState.NONE,
        **fields,
    }
    return RoutingDecision(**values)  # type: ignore[arg-type]


def admitted(routed: RoutingDecision, tier: TierSpec | None = JUNIOR) -> ApprovalRequest:
    return admit(
        SUBMISSION,
        request_id="req_9",
        agent_id="bot",
        action=Action("payment", "Pay INV-1", {"amount": 950}),
        decision=routed,
        tier=tier,
        now=NOW,
        predicted_escalation=0.7,
        reason_texts=(ReasonText("low_confidence", "Low confidence", "The agent is unsure."),),
    )


def test_a_pending_decision_admits_the_request_at_its_tier_with_the_whole_window() -> None:
    request = admitted(decision())
    assert (request.id, request.agent_id, request.status) == ("req_9", "bot", Status.PENDING)
    assert (request.lane, request.risk, request.tier) == (Lane.ESCALATE, Risk.MEDIUM, "junior")
    assert request.approvals_required == 2 and request.reasons == ("low_confidence",)
    assert request.deadline_at == NOW + timedelta(hours=1)
    assert request.remind_at == NOW + timedelta(minutes=20)
    assert request.decided_at is None and request.review_status is None
    [start] = request.history
    assert (start.from_tier, start.to_tier, start.at, start.reason) == (
        None,
        "junior",
        NOW,
        "start",
    )
    # Every field of the submission is kept as the agent stated it.
    assert (request.thread_id, request.amount, request.currency) == ("t-1", 950.0, "EUR")
    assert request.requested_by == "web:ana" and request.labels == {"team": "ap"}
    assert request.context["summary"] == "An invoice" and request.cost == 0.02
    assert request.question == "Which account?" and request.reject_options == ("duplicate",)
    assert request.predicted_escalation == 0.7 and request.reason_texts[0].title == "Low confidence"
    quiet = TierSpec(name="junior", sla=timedelta(hours=1))
    assert admitted(decision(), quiet).remind_at is None


def test_a_final_decision_admits_the_request_decided_with_no_window() -> None:
    approved = admitted(
        decision(status="approved", lane=Lane.AUTONOMOUS, tier=None, reasons=()), tier=None
    )
    assert approved.status is Status.APPROVED and approved.decided_at == NOW
    assert approved.deadline_at is None and approved.remind_at is None
    assert approved.history == ()
    reviewed = admitted(
        decision(status="approved", lane=Lane.REVIEW, review=ReviewState.QUEUED), tier=JUNIOR
    )
    # A sampled review has its tier and an open review, but no deadline: it is decided.
    assert reviewed.review_status is ReviewStatus.OPEN and reviewed.deadline_at is None
    assert reviewed.history[0].to_tier == "junior"
    stopped = admitted(decision(status="rejected", reasons=("agent_stopped",), tier=None), None)
    assert stopped.status is Status.REJECTED and stopped.decided_at == NOW


# -- a window restarted after downtime ---------------------------------------------------------


def test_only_a_last_tier_window_that_ended_before_the_start_is_restarted() -> None:
    ended_early = pending(deadline_at=NOW - timedelta(minutes=1))
    assert missed_while_down(ended_early, True, NOW)
    assert not missed_while_down(ended_early, False, NOW)  # it moves up a tier instead
    assert not missed_while_down(pending(deadline_at=NOW), True, NOW)  # ran out while up
    assert not missed_while_down(pending(deadline_at=None), True, NOW)


def test_a_restarted_window_is_the_tiers_whole_window_from_now() -> None:
    again = restart_window(pending(), JUNIOR, LATER)
    assert again.deadline_at == LATER + timedelta(hours=1)
    assert again.remind_at == LATER + timedelta(minutes=20)
    assert again.updated_at == LATER and again.tier == "junior"
    quiet = TierSpec(name="junior", sla=timedelta(hours=1))
    assert restart_window(pending(), quiet, LATER).remind_at is None
