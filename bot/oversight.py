"""The oversight figures of CONTRACT section 9, computed from requests and audit records.

Pure: values in, frozen values out, no I/O and no clock of its own, so the web dashboard
and `signoff report` can share it and tests can pin every number.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bot.domain import ApprovalRequest, AuditRecord, ReviewStatus, Status, Verdict, Vote, as_utc
from routing import Lane

LANES = (Lane.AUTONOMOUS.value, Lane.REVIEW.value, Lane.ESCALATE.value)

ESCALATION_LOW = 0.05
ESCALATION_HIGH = 0.40
TIME_TO_ESCALATE_LIMIT = 60.0
RUBBER_STAMP_RATE = 0.95
RUBBER_STAMP_SECONDS = 10.0
RUBBER_STAMP_MIN_VOTES = 5
MIN_SAMPLE = 10
POLICY_ACTOR = "policy"

# Candidate bucket widths, smallest first; the first that gives at most MAX_BUCKETS wins.
_WIDTHS = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=15),
    timedelta(hours=1),
    timedelta(hours=6),
    timedelta(days=1),
    timedelta(days=7),
)
MAX_BUCKETS = 24

DECISION_BINS: tuple[tuple[float, str], ...] = (
    (10, "<10s"),
    (60, "10s-1m"),
    (300, "1-5m"),
    (900, "5-15m"),
    (3600, "15m-1h"),
    (4 * 3600, "1-4h"),
    (86400, "4h-1d"),
    (math.inf, ">1d"),
)

_OVERRIDES = frozenset({Status.REJECTED, Status.MODIFIED, Status.REVERSED})
_SETTLES: Mapping[Status, frozenset[Verdict]] = {
    Status.APPROVED: frozenset({Verdict.APPROVE, Verdict.CONFIRM}),
    Status.MODIFIED: frozenset({Verdict.APPROVE, Verdict.MODIFY}),
    Status.REJECTED: frozenset({Verdict.REJECT}),
    Status.REVERSED: frozenset({Verdict.REVERSE}),
}
_HUMAN_OUTCOMES = frozenset(_SETTLES)
_APPROVING = frozenset({Verdict.APPROVE, Verdict.CONFIRM})


@dataclass(frozen=True)
class Rate:
    part: int
    whole: int

    @property
    def value(self) -> float | None:
        return self.part / self.whole if self.whole else None


@dataclass(frozen=True)
class ReviewerStat:
    reviewer: str
    name: str
    votes: int
    approvals: int
    median_seconds: float
    rubber_stamp: bool

    @property
    def approval_rate(self) -> float:
        return self.approvals / self.votes if self.votes else 0.0


@dataclass(frozen=True)
class Warning:
    code: str
    message: str


@dataclass(frozen=True)
class Figures:
    start: datetime
    width: timedelta
    buckets: tuple[datetime, ...]
    by_lane: Mapping[str, tuple[int, ...]]
    escalation: tuple[Rate, ...]
    escalation_overall: Rate
    overrides: tuple[Rate, ...]
    override_overall: Rate
    queue: tuple[tuple[str, int], ...]
    decision_bins: tuple[tuple[str, int], ...]
    decision_median: float | None
    decision_p95: float | None
    time_to_escalate_p50: float | None
    time_to_escalate_p95: float | None
    reviewers: tuple[ReviewerStat, ...]
    warnings: tuple[Warning, ...]

    @property
    def total(self) -> int:
        return sum(sum(counts) for counts in self.by_lane.values())

    def labels(self) -> tuple[str, ...]:
        """Short labels for the buckets: clock times for narrow buckets, dates for wide ones."""
        if self.width < timedelta(days=1):
            spans_days = len({b.date() for b in self.buckets}) > 1
            fmt = "%m-%d %H:%M" if spans_days else "%H:%M"
        else:
            fmt = "%m-%d"
        return tuple(b.strftime(fmt) for b in self.buckets)


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """Nearest-rank percentile; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def choose_width(span: timedelta) -> timedelta:
    for width in _WIDTHS:
        if span <= width * MAX_BUCKETS:
            return width
    return _WIDTHS[-1]


def _floor(at: datetime, width: timedelta) -> datetime:
    seconds = width.total_seconds()
    return datetime.fromtimestamp(math.floor(at.timestamp() / seconds) * seconds, UTC)


def _index(at: datetime, start: datetime, width: timedelta, count: int) -> int | None:
    offset = (as_utc(at) - start) / width
    index = math.floor(offset)
    return index if 0 <= index < count else None


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


def _available_at(request: ApprovalRequest, at: datetime) -> datetime:
    """When the item reached the tier a vote was cast at: its last tier move before the vote."""
    start = request.created_at
    for move in request.history:
        if move.at <= at:
            start = max(start, move.at)
    return start


def _reviewer_stats(requests: Sequence[ApprovalRequest]) -> tuple[ReviewerStat, ...]:
    times: dict[str, list[float]] = {}
    approvals: dict[str, int] = {}
    names: dict[str, str] = {}
    for request in requests:
        for vote in request.votes:
            if vote.reviewer == POLICY_ACTOR:
                continue
            seconds = max((vote.at - _available_at(request, vote.at)).total_seconds(), 0.0)
            times.setdefault(vote.reviewer, []).append(seconds)
            approvals[vote.reviewer] = approvals.get(vote.reviewer, 0) + (
                vote.verdict in _APPROVING
            )
            names[vote.reviewer] = vote.name or vote.reviewer
    stats = []
    for reviewer, spent in sorted(times.items()):
        median = statistics.median(spent)
        count = len(spent)
        rate = approvals[reviewer] / count
        stats.append(
            ReviewerStat(
                reviewer=reviewer,
                name=names[reviewer],
                votes=count,
                approvals=approvals[reviewer],
                median_seconds=median,
                rubber_stamp=count >= RUBBER_STAMP_MIN_VOTES
                and rate >= RUBBER_STAMP_RATE
                and median < RUBBER_STAMP_SECONDS,
            )
        )
    return tuple(stats)


def _time_to_escalate(records: Sequence[AuditRecord]) -> list[float]:
    submitted: dict[str, datetime] = {}
    found: dict[str, float] = {}
    for record in records:
        event = record.event
        if event.request_id is None:
            continue
        if event.event == "submitted":
            submitted[event.request_id] = event.at
        elif event.event == "posted" and event.request_id not in found:
            began = submitted.get(event.request_id)
            if began is not None:
                found[event.request_id] = max((event.at - began).total_seconds(), 0.0)
    return list(found.values())


def _rising(rates: Sequence[Rate]) -> bool:
    """Override rate rising: the later half of the window overrides clearly more often."""
    half = len(rates) // 2
    early = Rate(sum(r.part for r in rates[:half]), sum(r.whole for r in rates[:half]))
    late = Rate(sum(r.part for r in rates[half:]), sum(r.whole for r in rates[half:]))
    if early.whole < 5 or late.whole < 5:
        return False
    assert early.value is not None and late.value is not None
    return late.value - early.value >= 0.10


def compute(
    requests: Sequence[ApprovalRequest],
    records: Sequence[AuditRecord],
    *,
    now: datetime,
    tiers: Sequence[str],
    pending_by_tier: Mapping[str, int],
    dead_deliveries: int = 0,
) -> Figures:
    """All dashboard figures for the requests created up to `now`.

    The buckets span from the oldest request (or the last hour, with none) to `now`, at the
    narrowest width that keeps at most MAX_BUCKETS of them.
    """
    now = as_utc(now)
    created = [as_utc(r.created_at) for r in requests]
    first = min(created, default=now - timedelta(hours=1))
    width = choose_width(now - first)
    start = _floor(first, width)
    count = max(1, math.floor((now - start) / width) + 1)
    buckets = tuple(start + width * i for i in range(count))

    by_lane = {lane: [0] * count for lane in LANES}
    decided: list[list[int]] = [[0, 0] for _ in range(count)]
    decision_seconds: list[float] = []
    for request in requests:
        index = _index(request.created_at, start, width, count)
        if index is not None:
            by_lane.setdefault(request.lane.value, [0] * count)[index] += 1
        last = deciding_vote(request)
        if last is None:
            continue
        at = _index(last.at, start, width, count)
        if at is not None:
            decided[at][1] += 1
            decided[at][0] += request.status in _OVERRIDES
        if request.lane is Lane.ESCALATE and request.decided_at is not None:
            decision_seconds.append(
                max((request.decided_at - request.created_at).total_seconds(), 0.0)
            )

    escalation = tuple(
        Rate(by_lane[Lane.ESCALATE.value][i], sum(by_lane[lane][i] for lane in by_lane))
        for i in range(count)
    )
    escalation_overall = Rate(sum(r.part for r in escalation), sum(r.whole for r in escalation))
    overrides = tuple(Rate(part, whole) for part, whole in decided)
    override_overall = Rate(sum(r.part for r in overrides), sum(r.whole for r in overrides))

    bins = [0] * len(DECISION_BINS)
    for seconds in decision_seconds:
        bins[next(i for i, (edge, _) in enumerate(DECISION_BINS) if seconds < edge)] += 1

    queue_names = list(tiers) + sorted(set(pending_by_tier) - set(tiers))
    queue = tuple((name, int(pending_by_tier.get(name, 0))) for name in queue_names)

    escalate_times = _time_to_escalate(records)
    reviewers = _reviewer_stats(requests)

    warnings: list[Warning] = []
    rate = escalation_overall.value
    if rate is not None and escalation_overall.whole >= MIN_SAMPLE:
        if rate > ESCALATION_HIGH:
            warnings.append(
                Warning(
                    "escalation_high",
                    f"Escalation rate {rate:.0%} is above {ESCALATION_HIGH:.0%}: reviewers "
                    "are flooded; loosen the thresholds or fix the agent.",
                )
            )
        elif rate < ESCALATION_LOW:
            warnings.append(
                Warning(
                    "escalation_low",
                    f"Escalation rate {rate:.0%} is below {ESCALATION_LOW:.0%}: risky "
                    "actions may be slipping through; tighten the thresholds.",
                )
            )
    if _rising(overrides):
        warnings.append(
            Warning("override_rising", "Reviewers override the agent more often than before.")
        )
    p95_escalate = percentile(escalate_times, 0.95)
    if p95_escalate is not None and p95_escalate > TIME_TO_ESCALATE_LIMIT:
        warnings.append(
            Warning(
                "slow_escalation",
                f"Time to escalate p95 is {p95_escalate:.0f}s, over {TIME_TO_ESCALATE_LIMIT:.0f}s.",
            )
        )
    for stat in reviewers:
        if stat.rubber_stamp:
            warnings.append(
                Warning(
                    "rubber_stamp",
                    f"{stat.name} approved {stat.approval_rate:.0%} of {stat.votes} items "
                    f"with a median of {stat.median_seconds:.0f}s: possible rubber-stamping.",
                )
            )
    if dead_deliveries:
        warnings.append(
            Warning(
                "dead_deliveries",
                f"{dead_deliveries} webhook deliveries are dead: agents are waiting.",
            )
        )

    return Figures(
        start=start,
        width=width,
        buckets=buckets,
        by_lane={lane: tuple(counts) for lane, counts in by_lane.items()},
        escalation=escalation,
        escalation_overall=escalation_overall,
        overrides=overrides,
        override_overall=override_overall,
        queue=queue,
        decision_bins=tuple((label, bins[i]) for i, (_, label) in enumerate(DECISION_BINS)),
        decision_median=statistics.median(decision_seconds) if decision_seconds else None,
        decision_p95=percentile(decision_seconds, 0.95),
        time_to_escalate_p50=percentile(escalate_times, 0.5),
        time_to_escalate_p95=p95_escalate,
        reviewers=reviewers,
        warnings=tuple(warnings),
    )


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
