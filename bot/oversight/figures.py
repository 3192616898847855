"""The oversight figures of CONTRACT section 9, computed from requests and audit records.

Pure: values in, frozen values out, no I/O and no clock of its own, so the web dashboard
and `signoff report` can share it and tests can pin every number.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from bot.core.domain import (
    POLICY_ACTOR,
    ApprovalRequest,
    AuditRecord,
    Verdict,
    as_utc,
)
from bot.core.learning import STANDING_CHANNEL
from bot.oversight.quality import _OVERRIDES
from bot.oversight.quality import Quality as Quality
from bot.oversight.quality import Rate as Rate
from bot.oversight.quality import deciding_vote as deciding_vote
from bot.oversight.quality import needed_a_human as needed_a_human
from bot.oversight.quality import overridden as overridden
from bot.oversight.quality import quality as quality
from routing import Lane

LANES = (Lane.AUTONOMOUS.value, Lane.REVIEW.value, Lane.ESCALATE.value)


@dataclass(frozen=True)
class Thresholds:
    """When a figure becomes a warning sign: the seed's table, configurable under
    `oversight:` in the config file."""

    escalation_low: float = 0.05
    escalation_high: float = 0.40
    time_to_escalate: float = 60.0
    override_rise: float = 0.10
    queue_growth: float = 0.5
    rubber_stamp_rate: float = 0.98
    rubber_stamp_seconds: float = 5.0
    rubber_stamp_min_votes: int = 20
    # Fewer requests (or decisions, or queued items) than this say nothing either way.
    min_sample: int = 10


DEFAULTS = Thresholds()

# The seed's target band for the escalation rate: where a well-tuned agent sits. Outside
# it is off target; only beyond the thresholds above is it a warning sign.
ESCALATION_TARGET = (0.10, 0.30)

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

_APPROVING = frozenset({Verdict.APPROVE, Verdict.CONFIRM, Verdict.RESPOND})


@dataclass(frozen=True)
class ReviewerStat:
    reviewer: str
    name: str
    votes: int
    approvals: int
    median_seconds: float
    rubber_stamp: bool
    # Attention checks (canary items) this reviewer decided, and how many they approved:
    # every approved canary is a payment to a blocked payee that would have gone out.
    canaries: int = 0
    canaries_approved: int = 0

    @property
    def approval_rate(self) -> float:
        return self.approvals / self.votes if self.votes else 0.0


@dataclass(frozen=True)
class Warning:
    """A warning sign that holds now. `subject` tells apart several of one kind (a reviewer,
    a tier); `figures` are the numbers behind it, for alerts and their audit."""

    code: str
    message: str
    subject: str = ""
    figures: Mapping[str, float | int | str | None] = field(default_factory=dict)


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
    queue_trend: Mapping[str, tuple[int, ...]]
    decision_bins: tuple[tuple[str, int], ...]
    decision_median: float | None
    decision_p95: float | None
    time_to_escalate_p50: float | None
    time_to_escalate_p95: float | None
    reviewers: tuple[ReviewerStat, ...]
    warnings: tuple[Warning, ...]
    thresholds: Thresholds = DEFAULTS

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


def _available_at(request: ApprovalRequest, at: datetime) -> datetime:
    """When the item reached the tier a vote was cast at: its last tier move before the vote."""
    start = request.created_at
    for move in request.history:
        if move.at <= at:
            start = max(start, move.at)
    return start


def _reviewer_stats(
    requests: Sequence[ApprovalRequest], limits: Thresholds
) -> tuple[ReviewerStat, ...]:
    times: dict[str, list[float]] = {}
    approvals: dict[str, int] = {}
    names: dict[str, str] = {}
    canaries: dict[str, list[bool]] = {}
    for request in requests:
        for vote in request.votes:
            # A standing approval's use is the grantor's vote, cast by Signoff in no time:
            # counting it would make every grantor look like a rubber stamp.
            if vote.reviewer == POLICY_ACTOR or vote.channel == STANDING_CHANNEL:
                continue
            # Grouped by person: one human's Slack, Teams and web votes are one reviewer.
            who = vote.person or vote.reviewer
            seconds = max((vote.at - _available_at(request, vote.at)).total_seconds(), 0.0)
            times.setdefault(who, []).append(seconds)
            approving = vote.verdict in _APPROVING or vote.verdict is Verdict.MODIFY
            approvals[who] = approvals.get(who, 0) + (vote.verdict in _APPROVING)
            names[who] = vote.name or vote.reviewer
            if request.canary:
                canaries.setdefault(who, []).append(approving)
    stats = []
    for reviewer, spent in sorted(times.items()):
        median = statistics.median(spent)
        count = len(spent)
        rate = approvals[reviewer] / count
        checks = canaries.get(reviewer, [])
        fast_and_agreeable = (
            count >= limits.rubber_stamp_min_votes
            and rate >= limits.rubber_stamp_rate
            and median < limits.rubber_stamp_seconds
        )
        stats.append(
            ReviewerStat(
                reviewer=reviewer,
                name=names[reviewer],
                votes=count,
                approvals=approvals[reviewer],
                median_seconds=median,
                rubber_stamp=fast_and_agreeable or any(checks),
                canaries=len(checks),
                canaries_approved=sum(checks),
            )
        )
    return tuple(stats)


def _time_to_escalate(records: Sequence[AuditRecord]) -> list[float]:
    """Per request, submit -> the slowest measured copy of its first tier's card.

    Measured copies are those in channels with reviewers of the tier (`data.measured`,
    bot.escalation); a `posted` event without a tier (written before tiers were recorded)
    counts alone, as the first copy did then.
    """
    submitted: dict[str, datetime] = {}
    first_tier: dict[str, object] = {}
    found: dict[str, float] = {}
    for record in records:
        event = record.event
        request_id = event.request_id
        if request_id is None:
            continue
        if event.event == "submitted":
            submitted[request_id] = event.at
            continue
        if event.event != "posted" or request_id not in submitted:
            continue
        tier = event.data.get("tier")
        if request_id in first_tier and (tier is None or tier != first_tier[request_id]):
            continue
        first_tier.setdefault(request_id, tier)
        if event.data.get("measured", True) is False:
            continue
        elapsed = max((event.at - submitted[request_id]).total_seconds(), 0.0)
        found[request_id] = max(found.get(request_id, 0.0), elapsed)
    return list(found.values())


def _halves(rates: Sequence[Rate]) -> tuple[Rate, Rate]:
    half = len(rates) // 2
    early = Rate(sum(r.part for r in rates[:half]), sum(r.whole for r in rates[:half]))
    late = Rate(sum(r.part for r in rates[half:]), sum(r.whole for r in rates[half:]))
    return early, late


def _rising(rates: Sequence[Rate], rise: float) -> bool:
    """Override rate rising: the later half of the window overrides clearly more often."""
    early, late = _halves(rates)
    if early.whole < 5 or late.whole < 5:
        return False
    assert early.value is not None and late.value is not None
    return late.value - early.value >= rise


def _tier_at(request: ApprovalRequest, at: datetime) -> str | None:
    tier = None
    for move in request.history:
        if move.at <= at:
            tier = move.to_tier
    return tier if request.history else request.tier


def _queue_trend(
    requests: Sequence[ApprovalRequest], ends: Sequence[datetime], tiers: Sequence[str]
) -> dict[str, tuple[int, ...]]:
    """Items waiting for a verdict at each tier at the end of each bucket."""
    depth = {name: [0] * len(ends) for name in tiers}
    for request in requests:
        if request.lane is not Lane.ESCALATE:
            continue
        for index, end in enumerate(ends):
            if request.created_at > end or (
                request.decided_at is not None and request.decided_at <= end
            ):
                continue
            tier = _tier_at(request, end)
            if tier is not None:
                depth.setdefault(tier, [0] * len(ends))[index] += 1
    return {name: tuple(counts) for name, counts in depth.items()}


def _growing(series: Sequence[int], limits: Thresholds) -> tuple[float, int] | None:
    """(average depth over the earlier half, depth now) when the queue clearly grows."""
    if len(series) < 2:
        return None
    half = len(series) // 2
    early = sum(series[:half]) / half
    late = sum(series[half:]) / (len(series) - half)
    now = series[-1]
    if now < limits.min_sample or late < early * (1 + limits.queue_growth) or now <= early:
        return None
    return early, now


def compute(
    requests: Sequence[ApprovalRequest],
    records: Sequence[AuditRecord],
    *,
    now: datetime,
    tiers: Sequence[str],
    pending_by_tier: Mapping[str, int],
    dead_deliveries: int = 0,
    thresholds: Thresholds = DEFAULTS,
    awaiting: Sequence[ApprovalRequest] = (),
) -> Figures:
    """All dashboard figures for the requests created up to `now`.

    The buckets span from the oldest request (or the last hour, with none) to `now`, at the
    narrowest width that keeps at most MAX_BUCKETS of them. `awaiting` adds items created
    before the window that still wait, for the queue trend. Canary items (attention checks)
    count only in the reviewer figures: they are not the agents' traffic.
    """
    limits = thresholds
    now = as_utc(now)
    everyone = requests
    requests = [r for r in requests if not r.canary]
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
        # A standing approval decides at once, on a person's earlier say: not a wait.
        standing = any(v.channel == STANDING_CHANNEL for v in request.votes)
        if request.lane is Lane.ESCALATE and request.decided_at is not None and not standing:
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
    seen = {r.id for r in everyone}
    queued = list(everyone) + [r for r in awaiting if r.id not in seen]
    ends = [min(b + width, now) for b in buckets]
    queue_trend = _queue_trend(queued, ends, queue_names)

    escalate_times = _time_to_escalate(records)
    reviewers = _reviewer_stats(everyone, limits)

    warnings = _warnings(
        limits,
        escalation_overall,
        overrides,
        escalate_times,
        queue_trend,
        reviewers,
        dead_deliveries,
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
        queue_trend=queue_trend,
        decision_bins=tuple((label, bins[i]) for i, (_, label) in enumerate(DECISION_BINS)),
        decision_median=statistics.median(decision_seconds) if decision_seconds else None,
        decision_p95=percentile(decision_seconds, 0.95),
        time_to_escalate_p50=percentile(escalate_times, 0.5),
        time_to_escalate_p95=percentile(escalate_times, 0.95),
        reviewers=reviewers,
        warnings=tuple(warnings),
        thresholds=limits,
    )


def _warnings(
    limits: Thresholds,
    escalation: Rate,
    overrides: Sequence[Rate],
    escalate_times: Sequence[float],
    queue_trend: Mapping[str, Sequence[int]],
    reviewers: Sequence[ReviewerStat],
    dead_deliveries: int,
) -> list[Warning]:
    """The seed's warning signs, each with its figures and where to look."""
    found: list[Warning] = []
    rate = escalation.value
    if rate is not None and escalation.whole >= limits.min_sample:
        numbers = {"rate": round(rate, 4), "escalated": escalation.part, "of": escalation.whole}
        if rate > limits.escalation_high:
            found.append(
                Warning(
                    "escalation_high",
                    f"Escalation rate {rate:.0%} ({escalation.part} of {escalation.whole}) is "
                    f"above {limits.escalation_high:.0%}: reviewers are flooded and will start "
                    "to rubber-stamp. Look at which rules fire most and at the agent's "
                    "confidence calibration (`signoff calibrate`).",
                    figures=numbers,
                )
            )
        elif rate < limits.escalation_low:
            found.append(
                Warning(
                    "escalation_low",
                    f"Escalation rate {rate:.0%} ({escalation.part} of {escalation.whole}) is "
                    f"below {limits.escalation_low:.0%}: risky actions may be slipping "
                    "through. Check the outcomes agents report and tighten the thresholds.",
                    figures=numbers,
                )
            )
    if _rising(overrides, limits.override_rise):
        early, late = _halves(overrides)
        assert early.value is not None and late.value is not None
        found.append(
            Warning(
                "override_rising",
                f"Reviewers override the agent more often: {early.value:.0%} of decisions "
                f"earlier in the window, {late.value:.0%} lately. The agent or its inputs "
                "may have drifted; look at the recent rejections and their rationales.",
                figures={"early": round(early.value, 4), "late": round(late.value, 4)},
            )
        )
    p95 = percentile(escalate_times, 0.95)
    if p95 is not None and p95 > limits.time_to_escalate:
        found.append(
            Warning(
                "slow_escalation",
                f"Time to escalate p95 is {p95:.0f}s, over {limits.time_to_escalate:.0f}s: "
                "cards reach reviewers late. Look at the outbox backlog, dead card posts "
                "and the chat platform's rate limits.",
                figures={"p95_seconds": round(p95, 3), "items": len(escalate_times)},
            )
        )
    for tier, series in queue_trend.items():
        growth = _growing(series, limits)
        if growth is not None:
            early_depth, now_depth = growth
            found.append(
                Warning(
                    "queue_growing",
                    f"The {tier} queue is growing: {now_depth} items wait now against "
                    f"{early_depth:.0f} on average earlier in the window. Reviewers are "
                    "not keeping up; add reviewers to the tier or review its routing.",
                    subject=tier,
                    figures={"now": now_depth, "earlier": round(early_depth, 2)},
                )
            )
    for stat in reviewers:
        if not stat.rubber_stamp:
            continue
        canary = (
            f" and approved {stat.canaries_approved} of {stat.canaries} attention checks"
            if stat.canaries_approved
            else ""
        )
        found.append(
            Warning(
                "rubber_stamp",
                f"{stat.name} approved {stat.approval_rate:.0%} of {stat.votes} decisions "
                f"with a median of {stat.median_seconds:.1f}s to decide{canary}: possible "
                "rubber-stamping. Look at their recent approvals and their queue size.",
                subject=stat.reviewer,
                figures={
                    "approval_rate": round(stat.approval_rate, 4),
                    "decisions": stat.votes,
                    "median_seconds": round(stat.median_seconds, 3),
                    "canaries_approved": stat.canaries_approved,
                },
            )
        )
    if dead_deliveries:
        found.append(
            Warning(
                "dead_deliveries",
                f"{dead_deliveries} webhook deliveries are dead: agents are waiting. "
                "Check the agents' receivers and retry them from the dashboard.",
                figures={"dead": dead_deliveries},
            )
        )
    return found
