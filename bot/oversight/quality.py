"""Outcome figures: who decided an item, whether it needed a person, and the seed's
quality metrics (escalation precision and recall, task success, time to correct).

Pure, like `bot.oversight.figures`, which re-exports these names.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bot.core.domain import POLICY_ACTOR, ApprovalRequest, ReviewStatus, Status, Verdict, Vote
from routing import Lane

_OVERRIDES = frozenset({Status.REJECTED, Status.MODIFIED, Status.REVERSED})
_SETTLES: Mapping[Status, frozenset[Verdict]] = {
    Status.APPROVED: frozenset({Verdict.APPROVE, Verdict.CONFIRM, Verdict.RESPOND}),
    Status.MODIFIED: frozenset({Verdict.APPROVE, Verdict.MODIFY}),
    Status.REJECTED: frozenset({Verdict.REJECT}),
    Status.REVERSED: frozenset({Verdict.REVERSE}),
}
_HUMAN_OUTCOMES = frozenset(_SETTLES)


@dataclass(frozen=True)
class Rate:
    part: int
    whole: int

    @property
    def value(self) -> float | None:
        return self.part / self.whole if self.whole else None


def deciding_vote(request: ApprovalRequest) -> Vote | None:
    """The human vote that settled the item (or its review); None if no person decided it:
    still open, ended by the on_timeout policy, or never shown to anyone."""
    if request.status not in _HUMAN_OUTCOMES or request.review_status is ReviewStatus.OPEN:
        return None
    if not request.votes or request.votes[-1].reviewer == POLICY_ACTOR:
        return None
    last = request.votes[-1]
    # A partial approval followed by a timeout is not a human decision.
    return last if last.verdict in _SETTLES[request.status] else None


@dataclass(frozen=True)
class Quality:
    """The seed's outcome metrics, from verdicts and agents' reported ground truth."""

    escalation_precision: Rate
    escalation_recall: Rate
    task_success: Rate
    time_to_correct_median: float | None


def overridden(request: ApprovalRequest) -> bool:
    """A person rejected, modified or reversed what the agent proposed."""
    return request.status in _OVERRIDES and deciding_vote(request) is not None


def needed_a_human(request: ApprovalRequest) -> bool:
    """A person changed the outcome, or the agent later reported the action as wrong.

    The ground truth of escalation precision and recall, and of threshold calibration.
    """
    if request.status in _OVERRIDES:
        return overridden(request)
    return bool(request.outcome is not None and request.outcome.get("correct") is False)


def quality(requests: Sequence[ApprovalRequest]) -> Quality:
    """Escalation precision (escalations that needed a person), recall (problems that were
    escalated), task success (outcomes reported correct) and median time-to-correct
    (submit to a person's reversal of an action that had already proceeded)."""
    requests = [r for r in requests if not r.canary]
    escalated = [r for r in requests if r.lane is Lane.ESCALATE and r.is_final]
    needed = [r for r in escalated if needed_a_human(r)]
    problems = [r for r in requests if r.is_final and needed_a_human(r)]
    caught = [r for r in problems if r.lane is Lane.ESCALATE]
    reported = [r for r in requests if r.outcome is not None]
    correct = [r for r in reported if r.outcome and r.outcome.get("correct") is True]
    corrections = [
        max((r.decided_at - r.created_at).total_seconds(), 0.0)
        for r in requests
        if r.status is Status.REVERSED and r.decided_at is not None
    ]
    return Quality(
        escalation_precision=Rate(len(needed), len(escalated)),
        escalation_recall=Rate(len(caught), len(problems)),
        task_success=Rate(len(correct), len(reported)),
        time_to_correct_median=statistics.median(corrections) if corrections else None,
    )
