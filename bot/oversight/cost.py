"""The cost of oversight: what each resolution cost the agent and the reviewers, by lane.

Agent cost is what the request reported (`cost`, in the agents' currency). Reviewer time is
each person's decision time (from the moment the item reached the tier they voted at to
their vote; standing approvals and the on_timeout policy take none), priced at
`oversight.reviewer_hourly_cost` for that tier when it is configured. Pure: requests and
prices in, frozen figures out.
"""

from __future__ import annotations

import html
import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from prometheus_client import CollectorRegistry, Gauge

from bot.core.domain import POLICY_ACTOR, ApprovalRequest, Vote, as_utc
from bot.core.learning import STANDING_CHANNEL
from bot.oversight.figures import LANES

HourlyCost = Callable[[str | None], float | None]


@dataclass(frozen=True)
class LaneCost:
    lane: str
    resolutions: int
    agent_cost: float
    reviewer_hours: float
    reviewer_cost: float | None

    @property
    def per_resolution(self) -> float | None:
        """Agent plus reviewer cost per resolution; None without resolutions or prices."""
        if not self.resolutions or self.reviewer_cost is None:
            return None
        return (self.agent_cost + self.reviewer_cost) / self.resolutions

    @property
    def hours_per_resolution(self) -> float | None:
        return self.reviewer_hours / self.resolutions if self.resolutions else None


@dataclass(frozen=True)
class CostFigures:
    by_lane: tuple[LaneCost, ...]
    trend: tuple[tuple[datetime, float | None], ...]  # per period: cost (or hours) each
    priced: bool  # reviewer_hourly_cost is configured: the trend is money, else hours
    standing_hours_saved: float
    standing_cost_saved: float | None

    @property
    def overall(self) -> LaneCost:
        lanes = self.by_lane
        return LaneCost(
            "all",
            sum(c.resolutions for c in lanes),
            sum(c.agent_cost for c in lanes),
            sum(c.reviewer_hours for c in lanes),
            None
            if any(c.reviewer_cost is None for c in lanes)
            else sum(c.reviewer_cost or 0.0 for c in lanes),
        )


def _tier_at(request: ApprovalRequest, at: datetime) -> str | None:
    tier = None
    for move in request.history:
        if move.at <= at:
            tier = move.to_tier
    return tier or request.tier


def _reached(request: ApprovalRequest, at: datetime) -> datetime:
    start = request.created_at
    for move in request.history:
        if move.at <= at:
            start = max(start, move.at)
    return start


def _by_people(vote: Vote) -> bool:
    return vote.reviewer != POLICY_ACTOR and vote.channel != STANDING_CHANNEL


def reviewer_time(request: ApprovalRequest, price: HourlyCost) -> tuple[float, float | None]:
    """Hours people spent deciding `request`, and their cost (None when not priced)."""
    hours = 0.0
    cost: float | None = 0.0
    for vote in request.votes:
        if not _by_people(vote):
            continue
        spent = max((vote.at - _reached(request, vote.at)).total_seconds(), 0.0) / 3600
        hours += spent
        rate = price(_tier_at(request, vote.at))
        cost = None if rate is None or cost is None else cost + spent * rate
    return hours, cost


def cost_figures(
    requests: Sequence[ApprovalRequest],
    price: HourlyCost,
    *,
    start: datetime,
    width: timedelta,
    buckets: int,
) -> CostFigures:
    """Cost per resolution by lane over `requests` that reached a final status, a trend per
    period of `width` from `start`, and what standing approvals saved (their uses at the
    median reviewer time of the items people decided, priced at the start tier)."""
    priced = price(None) is not None
    totals = {lane: [0, 0.0, 0.0, 0.0] for lane in LANES}
    trend: list[list[float]] = [[0, 0.0] for _ in range(buckets)]
    decided_hours: list[float] = []
    standing: list[ApprovalRequest] = []
    for request in requests:
        if request.canary or not request.is_final or request.decided_at is None:
            continue
        hours, reviewer_cost = reviewer_time(request, price)
        agent = request.cost or 0.0
        row = totals[request.lane.value]
        row[0] += 1
        row[1] += agent
        row[2] += hours
        row[3] = math.nan if reviewer_cost is None else row[3] + reviewer_cost
        if any(v.channel == STANDING_CHANNEL for v in request.votes):
            standing.append(request)
        elif hours > 0:
            decided_hours.append(hours)
        index = math.floor((as_utc(request.decided_at) - start) / width)
        if 0 <= index < buckets:
            trend[index][0] += 1
            spent = (reviewer_cost or 0.0) + agent if priced else hours
            trend[index][1] += spent
    median = statistics.median(decided_hours) if decided_hours else 0.0
    saved_cost = sum(median * (price(r.tier) or 0.0) for r in standing) if priced else None
    return CostFigures(
        by_lane=tuple(
            LaneCost(
                lane,
                int(row[0]),
                row[1],
                row[2],
                None if not priced or math.isnan(row[3]) else row[3],
            )
            for lane, row in totals.items()
        ),
        trend=tuple(
            (start + width * i, (spent / count) if count else None)
            for i, (count, spent) in enumerate(trend)
        ),
        priced=priced,
        standing_hours_saved=median * len(standing),
        standing_cost_saved=saved_cost,
    )


def _money(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.2f}"


def _hours(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 60:.1f} min"


def text_lines(figures: CostFigures) -> list[str]:
    """The report's "Cost of oversight" section."""
    lines = ["", "Cost of oversight (per resolution; agents' cost plus reviewer time):"]
    for lane in (*figures.by_lane, figures.overall):
        if not lane.resolutions:
            continue
        money = f"  {_money(lane.per_resolution)} each" if figures.priced else ""
        lines.append(
            f"  {lane.lane:<11} {lane.resolutions:>6} resolved  agent {_money(lane.agent_cost)}"
            f"  reviewers {lane.reviewer_hours:.1f} h ({_hours(lane.hours_per_resolution)} "
            f"each){money}"
        )
    if not figures.priced:
        lines.append("  (set oversight.reviewer_hourly_cost to price reviewer time)")
    points = [f"{at:%m-%d} {value:.2f}" for at, value in figures.trend if value is not None]
    unit = "cost" if figures.priced else "reviewer hours"
    lines.append(f"  trend ({unit} per resolution): {', '.join(points[-8:]) or 'n/a'}")
    saved = f"{figures.standing_hours_saved:.1f} reviewer hours"
    if figures.standing_cost_saved is not None:
        saved += f" ({_money(figures.standing_cost_saved)})"
    lines.append(f"  standing approvals saved about {saved}")
    return lines


def html_section(lines: Sequence[str]) -> str:
    """`text_lines` as a section of the HTML report."""
    items = "".join(f"<li>{html.escape(line.strip())}</li>" for line in lines[2:])
    return f"<h2>Cost of oversight</h2>\n<p>{html.escape(lines[1].strip())}</p>\n<ul>{items}</ul>\n"


class CostGauges:
    """The cost figures on /metrics, refreshed by a periodic job over the oversight window."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.per_resolution = Gauge(
            "signoff_cost_per_resolution",
            "Agent plus reviewer cost per resolution over the oversight window, by lane "
            "(needs oversight.reviewer_hourly_cost).",
            ["lane"],
            registry=registry,
        )
        self.reviewer_hours = Gauge(
            "signoff_reviewer_hours_per_resolution",
            "Reviewer hours per resolution over the oversight window, by lane.",
            ["lane"],
            registry=registry,
        )
        self.saved = Gauge(
            "signoff_standing_reviewer_hours_saved",
            "Reviewer hours standing approvals saved over the oversight window.",
            registry=registry,
        )

    def update(self, figures: CostFigures) -> None:
        for lane in figures.by_lane:
            self.reviewer_hours.labels(lane=lane.lane).set(lane.hours_per_resolution or 0.0)
            if figures.priced:
                self.per_resolution.labels(lane=lane.lane).set(lane.per_resolution or 0.0)
        self.saved.set(figures.standing_hours_saved)
