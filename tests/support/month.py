"""A simulated month of traffic, written through the real engine on a manual clock.

Thirty days of an invoice agent: most requests proceed autonomously, some are sampled for
review, nearly a third escalate. Three reviewers: Alice reads carefully (minutes, rejects what is
wrong), Carol is the manager, and from day 20 to day 29 Bob slides into rubber-stamping (a
few seconds, approves everything, including an attention check; the alert that catches him
ends it). Agents report outcomes for part of what proceeded, a few of them wrong. The last
days leave a growing queue.

Some proposals are wrong (they should not go through), as in a real organisation: mostly
payments and invoices from new suppliers, and more often at night; the agent is less sure
of a wrong proposal than of a right one, but not reliably so. The traffic (what the agent
proposes, when, and which proposals are wrong) comes from its own random stream, so two
runs that route differently see the same proposals at the same times; people act at their
own times, scheduled as events between arrivals.

With `learn_from`, the history learns from itself on that day (a quarter: `days=90,
learn_from=45`): an escalation model is trained on what happened so far, the service is
restarted with `then` (prediction mode shadow, or active with the organisation's new
confidence threshold), and Alice grants a standing approval for small invoices.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bot.core.clock import ManualClock
from bot.core.domain import ApprovalRequest, AuditEvent, Status, Verdict
from bot.core.learning import GrantRequest
from bot.core.ports import Repository
from bot.engine.canaries import CanaryPolicy
from bot.server.config import LoadedConfig, parse_config
from routing import Lane
from signoff_client.submission import Submission
from tests.support.world import World, new_request

TIERS = [
    {"name": "junior", "sla": "4h", "reviewers": ["web:alice", "web:bob"]},
    {"name": "senior", "sla": "8h", "reviewers": ["web:carol"]},
    {"name": "manager", "sla": "1d", "reviewers": ["web:carol"]},
]

# From the day the model is trained: scores stored and shown, routing unchanged; the
# threshold is the one the organisation means to route on, so the report's "would add" is
# what active mode would add.
SHADOW: Mapping[str, Any] = {"prediction": {"mode": "shadow", "threshold": 0.3}}
# Or the model routes, and the organisation stops escalating on the agent's confidence
# alone (it escalated too much for too little): only a very unsure agent still escalates.
ACTIVE: Mapping[str, Any] = {
    "prediction": {"mode": "active", "threshold": 0.3, "prepare_margin": 0.15},
    "routing": {"review_at": 0.35},
}

BOB_SLIDES = range(20, 30)
ATTENTION_CHECK_DAY = 21


def month_config(then: Mapping[str, Any] | None = None) -> LoadedConfig:
    """The simulation's config; `then` adds the `prediction` section and routing changes."""
    then = then or {}
    routing = {
        "start_tier": {"low": "junior", "medium": "junior", "high": "manager"},
        "review_sample_rate": 0.5,
        **then.get("routing", {}),
    }
    data: dict[str, Any] = {
        "agents": [{"id": "invoice-bot", "key_sha256": "0" * 64}],
        "routing": routing,
        "tiers": TIERS,
        "web": {},
    }
    if "prediction" in then:
        data["prediction"] = dict(then["prediction"])
    return parse_config(data, env={})


@dataclass(frozen=True)
class Proposal:
    """One request the agent sends, and the simulation's ground truth about it."""

    day: int
    n: int
    at: datetime
    kind: str
    amount: int
    supplier: str
    confidence: float
    wrong: bool  # this proposal should not go through
    reported: bool  # the agent reports the outcome when it proceeds

    @property
    def invoice(self) -> str:
        return f"INV-{self.day:02d}{self.n:03d}"

    def request(self) -> Submission:
        return new_request(
            kind=self.kind,
            summary=f"Pay invoice {self.invoice}",
            payload={"invoice": self.invoice, "amount": self.amount},
            confidence=self.confidence,
            amount=self.amount,
            currency="EUR",
            labels={"supplier": self.supplier},
        )


def _wrong_chance(new_supplier: bool, at: datetime) -> float:
    # Log-odds: rare for known suppliers by day, far likelier for a new supplier, and more
    # likely the nearer to 2 a.m.
    hour = at.hour + at.minute / 60
    z = -5.0 + 4.0 * new_supplier + 2.0 * math.cos(2 * math.pi * (hour - 2) / 24)
    return 1 / (1 + math.exp(-z))


def traffic(start: datetime, days: int) -> list[Proposal]:
    """What the agent proposes and when: the same for every run from the same start."""
    rng = random.Random(2026)
    found = []
    for day in range(days):
        per_day = 20 + day // 3  # traffic grows through the month
        slot = timedelta(days=1) / per_day
        for n in range(per_day):
            at = start + timedelta(days=day) + slot * (n + rng.uniform(0.1, 0.9))
            payment = n % 4 == 0
            amount = rng.choice([120, 340, 80, 900, 2600]) if payment else rng.randint(10, 400)
            new_supplier = rng.random() < 0.15
            wrong = rng.random() < _wrong_chance(new_supplier, at)
            confidence = rng.choice([0.95, 0.92, 0.9, 0.88, 0.85, 0.7, 0.62, 0.45, 0.3])
            found.append(
                Proposal(
                    day=day,
                    n=n,
                    at=at,
                    kind="payment" if payment else "invoice",
                    amount=amount,
                    supplier="new" if new_supplier else "known",
                    confidence=confidence - (0.3 if wrong and confidence > 0.5 else 0.0),
                    wrong=wrong,
                    reported=rng.random() < 0.5,
                )
            )
    return found


@dataclass(frozen=True)
class MonthFigures:
    """What the simulation did, counted as it went (the report is checked against these)."""

    requests: int
    escalated: int
    bob_votes: int
    bob_approvals: int
    standing_approved: int = 0
    model_version: int | None = None
    # The ids of the requests whose proposal was wrong: the ground truth of recall.
    wrong: frozenset[str] = frozenset()
    learned_at: datetime | None = None


@dataclass(frozen=True)
class Routed:
    """How a run routed the real (non-canary) requests created since some moment."""

    requests: int
    escalated: int
    wrong: int
    # Wrong proposals a person decided before they went through (escalated, and not
    # approved by a standing approval on the way).
    caught: int
    # Requests that proceeded but were prepared (posted to a tier as likely to need it).
    prepared: int
    prepared_wrong: int

    @property
    def escalation_rate(self) -> float:
        return self.escalated / self.requests

    @property
    def recall(self) -> float:
        return self.caught / self.wrong


def routed(
    requests: Sequence[ApprovalRequest],
    wrong: frozenset[str],
    since: datetime,
    *,
    prepare_above: float | None = None,
) -> Routed:
    """The routing of the requests created since `since`; `prepare_above` is the run's
    `prediction.prepare_above` (None when nothing was prepared)."""
    real = [r for r in requests if not r.canary and r.created_at >= since]
    escalated = [r for r in real if r.lane is Lane.ESCALATE]
    by_people = [r for r in escalated if not any(v.channel == "standing" for v in r.votes)]
    prepared = [
        r
        for r in real
        if prepare_above is not None
        and r.lane is not Lane.ESCALATE
        and r.review_status is not None
        and (r.predicted_escalation or 0.0) > prepare_above
    ]
    return Routed(
        requests=len(real),
        escalated=len(escalated),
        wrong=sum(1 for r in real if r.id in wrong),
        caught=sum(1 for r in by_people if r.id in wrong),
        prepared=len(prepared),
        prepared_wrong=sum(1 for r in prepared if r.id in wrong),
    )


@dataclass
class _Run:
    """The world, the people's scheduled actions and what was counted."""

    world: World
    rng: random.Random
    actions: list[tuple[datetime, int, Callable[[], Awaitable[None]]]] = field(default_factory=list)
    order: itertools.count[int] = field(default_factory=itertools.count)
    bob_votes: int = 0

    @property
    def clock(self) -> ManualClock:
        return self.world.clock

    def later(self, delay: timedelta, action: Callable[[], Awaitable[None]]) -> None:
        heapq.heappush(self.actions, (self.clock.now() + delay, next(self.order), action))

    async def until(self, moment: datetime) -> None:
        """Everything people do before `moment`, in time order; then the clock at `moment`."""
        while self.actions and self.actions[0][0] <= moment:
            at, _, action = heapq.heappop(self.actions)
            self.advance_to(at)
            await action()
            await self.world.worker.drain()
        self.advance_to(moment)

    def advance_to(self, moment: datetime) -> None:
        # Someone who took longer than the next event's time pushes it back, as in life.
        if self.clock.now() < moment:
            self.clock.advance(moment - self.clock.now())

    def decide(self, request_id: str, reviewer: str, verdict: Verdict) -> None:
        async def act() -> None:
            await self.world.engine.vote(
                request_id,
                reviewer,
                verdict,
                channel="web",
                rationale="checked against the purchase order",
            )

        self.later(timedelta(seconds=self.rng.uniform(60, 900)), act)

    def reverse(self, request_id: str, checker: str) -> None:
        async def act() -> None:
            await self.world.engine.vote(
                request_id, checker, Verdict.REVERSE, channel="web", rationale="duplicate"
            )

        self.later(timedelta(minutes=self.rng.randint(5, 120)), act)

    def bob_clears_his_queue(self) -> None:
        async def act() -> None:
            # Whatever just arrived, attention checks included, in seconds.
            fresh = self.clock.now() - timedelta(minutes=5)
            for waiting in await self.world.engine.pending_for("web:bob"):
                if waiting.status is not Status.PENDING or waiting.created_at < fresh:
                    continue
                self.clock.advance(timedelta(seconds=self.rng.uniform(1.0, 3.5)))
                await self.world.engine.vote(waiting.id, "web:bob", Verdict.APPROVE, channel="web")
                self.bob_votes += 1

        self.later(timedelta(seconds=self.rng.uniform(0.5, 2.0)), act)


async def _learn(run: _Run, then: Mapping[str, Any], days_left: int) -> int:
    """Train and activate a model on the history so far, restart with `then`; grant Alice's
    standing approval."""
    from bot.oversight.predict import ActiveModel, train

    world = run.world
    now = world.clock.now()
    history = []
    cursor = None
    while True:
        page = await world.repo.list_requests(limit=500, cursor=cursor)
        history += page.items
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    event = AuditEvent(event="model_trained", at=now, actor="cli", channel="cli")
    stored = await world.repo.add_model(train(history).as_model(now, "cli"), event)
    await world.repo.activate_model(stored.version, now, event)
    run.world = World(world.repo, month_config(then), world.clock, rng=world.rng)
    model = ActiveModel(world.repo)
    await model.refresh()
    run.world.engine.predictor = model
    await run.world.engine.grant_standing(
        GrantRequest(
            grantor="web:alice",
            agent_id="invoice-bot",
            kind="invoice",
            ttl=timedelta(days=min(days_left, 30)),  # the longest a grant may run
            max_uses=10_000,
            reason="small invoices from known suppliers",
            when="amount <= 200.0",
        ),
        channel="web",
    )
    return stored.version


async def simulate_month(
    repo: Repository,
    start: datetime,
    days: int = 30,
    *,
    learn_from: int | None = None,
    then: Mapping[str, Any] = SHADOW,
) -> MonthFigures:
    rng = random.Random(2027)
    run = _Run(World(repo, month_config(), ManualClock(start), rng=rng), rng)
    requests = escalated = standing = 0
    wrong: set[str] = set()
    model_version = learned_at = None
    attention_check = CanaryPolicy(rate=1.0, tiers=frozenset({"junior"}))
    canary_due = False
    for proposal in traffic(start, days):
        day = proposal.day
        if day == learn_from and model_version is None:
            await run.until(start + timedelta(days=day))
            learned_at = run.clock.now()
            model_version = await _learn(run, then, days - day)
        await run.until(proposal.at)
        engine = run.world.engine
        # Queue growth in the last three days: reviewers stop keeping up.
        keeping_up = day < days - 3
        # One attention check, beside the first item that waits at junior in Bob's era.
        canary_due = canary_due or (day == ATTENTION_CHECK_DAY and proposal.n == 0)
        engine.canaries = attention_check if canary_due else None
        result = await engine.submit("invoice-bot", proposal.request())
        rid = str(result.response["id"])
        requests += 1
        if proposal.wrong:
            wrong.add(rid)
        by_standing = "standing_approval" in result.response
        standing += by_standing
        request = await engine.get(rid)
        if canary_due and attention_check.follows(request):
            canary_due = False
        run.clock.advance(timedelta(seconds=rng.uniform(0.2, 3.0)))  # the card goes out
        await run.world.worker.drain()
        if request.lane is Lane.ESCALATE:
            escalated += 1
        if request.status is Status.PENDING and keeping_up:
            if day in BOB_SLIDES and request.tier == "junior":
                run.bob_clears_his_queue()
                continue
            reviewer = "web:alice" if request.tier == "junior" else "web:carol"
            run.decide(rid, reviewer, Verdict.REJECT if proposal.wrong else Verdict.APPROVE)
        elif request.review_status is not None and keeping_up and proposal.wrong:
            # Alice's standing approval already voted for her: Carol reviews its uses.
            run.reverse(rid, "web:carol" if by_standing else "web:alice")
        elif request.status is Status.APPROVED and proposal.reported:
            await engine.record_outcome("invoice-bot", rid, not proposal.wrong, "reconciled")
    await run.until(run.clock.now() + timedelta(hours=1))
    return MonthFigures(
        requests,
        escalated,
        run.bob_votes,
        run.bob_votes,
        standing,
        model_version,
        frozenset(wrong),
        learned_at,
    )
