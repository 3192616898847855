"""A simulated month of traffic, written through the real engine on a manual clock.

Thirty days of an invoice agent: most requests proceed autonomously, some are sampled for
review, a fifth escalate. Three reviewers: Alice reads carefully (minutes, rejects what is
wrong), Carol is the manager, and from day 20 Bob slides into rubber-stamping (a few
seconds, approves everything, including an attention check). Agents report outcomes for
part of what proceeded, a few of them wrong. The last days leave a growing queue.

With `learn_from`, the history learns from itself on that day (a quarter: `days=90,
learn_from=45`): an escalation model is trained on what happened so far and scores every
later request in shadow mode, and Alice grants a standing approval for small invoices.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.core.clock import ManualClock
from bot.core.domain import AuditEvent, Status, Verdict
from bot.core.learning import GrantRequest
from bot.core.ports import Repository
from bot.engine.canaries import CanaryPolicy
from bot.engine.machine import Engine
from bot.server.config import LoadedConfig, parse_config
from tests.support.world import World, new_request

TIERS = [
    {"name": "junior", "sla": "4h", "reviewers": ["web:alice", "web:bob"]},
    {"name": "senior", "sla": "8h", "reviewers": ["web:carol"]},
    {"name": "manager", "sla": "1d", "reviewers": ["web:carol"]},
]


def month_config() -> LoadedConfig:
    return parse_config(
        {
            "agents": [{"id": "invoice-bot", "key_sha256": "0" * 64}],
            "routing": {
                "start_tier": {"low": "junior", "medium": "junior", "high": "manager"},
                "review_sample_rate": 0.5,
            },
            "tiers": TIERS,
            "web": {},
        },
        env={},
    )


@dataclass(frozen=True)
class MonthFigures:
    """What the simulation did, counted as it went (the report is checked against these)."""

    requests: int
    escalated: int
    bob_votes: int
    bob_approvals: int
    standing_approved: int = 0
    model_version: int | None = None


async def _learn(world: World, days_left: int) -> int:
    """Train and activate a model on the history so far; grant Alice's standing approval."""
    from bot.oversight.predict import ActiveModel, train

    engine = world.engine
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
    model = ActiveModel(world.repo)
    await model.refresh()
    engine.predictor = model
    await engine.grant_standing(
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
    repo: Repository, start: datetime, days: int = 30, *, learn_from: int | None = None
) -> MonthFigures:
    rng = random.Random(2026)
    clock = ManualClock(start)
    world = World(repo, month_config(), clock, rng=rng)
    engine: Engine = world.engine
    requests = escalated = bob_votes = bob_approvals = standing = 0
    model_version = None
    attention_check = CanaryPolicy(rate=1.0, tiers=frozenset({"junior"}))
    canary_due = False
    for day in range(days):
        morning = start + timedelta(days=day)
        if clock.now() < morning:
            clock.advance(morning - clock.now())
        if day == learn_from:
            model_version = await _learn(world, days - day)
        per_day = 20 + day // 3  # traffic grows through the month
        # Queue growth in the last three days: reviewers stop keeping up.
        keeping_up = day < days - 3
        for n in range(per_day):
            clock.advance(timedelta(minutes=rng.randint(20, 50)))
            confidence = rng.choice([0.95, 0.92, 0.9, 0.88, 0.85, 0.7, 0.62, 0.45, 0.3])
            amount = rng.choice([120, 340, 80, 900, 2600]) if n % 4 == 0 else rng.randint(10, 400)
            wrong = rng.random() < 0.12  # this proposal should not go through
            new = new_request(
                kind="payment" if n % 4 == 0 else "invoice",
                summary=f"Pay invoice INV-{day:02d}{n:03d}",
                payload={"invoice": f"INV-{day:02d}{n:03d}", "amount": amount},
                confidence=confidence - (0.3 if wrong and confidence > 0.5 else 0.0),
                amount=amount,
                currency="EUR",
            )
            # One attention check, beside the first item that waits at junior in Bob's era.
            canary_due = canary_due or (day == days - 8 and n == 0)
            engine.canaries = attention_check if canary_due else None
            result = await engine.submit("invoice-bot", new)
            rid = str(result.response["id"])
            requests += 1
            standing += "standing_approval" in result.response
            request = await engine.get(rid)
            if canary_due and attention_check.follows(request):
                canary_due = False
            clock.advance(timedelta(seconds=rng.uniform(0.2, 3.0)))  # the card goes out
            await world.worker.drain()
            if request.lane.value == "escalate":
                escalated += 1
            if request.status is Status.PENDING and keeping_up:
                bob_era = day >= 20 and request.tier == "junior"
                if bob_era:
                    # Whatever just arrived, attention checks included, in seconds.
                    fresh = clock.now() - timedelta(minutes=5)
                    for waiting in await engine.pending_for("web:bob"):
                        if waiting.status is not Status.PENDING or waiting.created_at < fresh:
                            continue
                        clock.advance(timedelta(seconds=rng.uniform(1.0, 3.5)))
                        await engine.vote(waiting.id, "web:bob", Verdict.APPROVE, channel="web")
                        bob_votes += 1
                        bob_approvals += 1
                    continue
                reviewer = "web:alice" if request.tier == "junior" else "web:carol"
                clock.advance(timedelta(seconds=rng.uniform(60, 900)))
                verdict = Verdict.REJECT if wrong else Verdict.APPROVE
                await engine.vote(
                    rid,
                    reviewer,
                    verdict,
                    channel="web",
                    rationale="checked against the purchase order",
                )
            elif request.review_status is not None and keeping_up and wrong:
                clock.advance(timedelta(minutes=rng.randint(5, 120)))
                # Alice's standing approval already voted for her: Carol reviews its uses.
                checker = "web:carol" if "standing_approval" in result.response else "web:alice"
                await engine.vote(
                    rid, checker, Verdict.REVERSE, channel="web", rationale="duplicate"
                )
            elif request.status is Status.APPROVED and rng.random() < 0.5:
                await engine.record_outcome("invoice-bot", rid, not wrong, "reconciled")
        await world.worker.drain()
    return MonthFigures(requests, escalated, bob_votes, bob_approvals, standing, model_version)
