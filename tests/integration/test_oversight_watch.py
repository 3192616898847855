"""The warning signs of CONTRACT section 9, raised once and cleared on a simulated clock.

Each test drives real traffic through the engine on every repository backend, evaluates
the watch, and checks the alert state and the ALERT outbox rows it announced.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from bot.core.clock import ManualClock
from bot.core.domain import Alert, OutboxKind, OutboxStatus, Verdict
from bot.oversight.figures import DEFAULTS, Thresholds
from bot.oversight.watch import Watch, gather
from tests.conftest import RepoFactory
from tests.support.world import World, make_config

WINDOW = timedelta(hours=1)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def world(repo_factory: RepoFactory, clock: ManualClock) -> World:
    return World(await repo_factory(), make_config(), clock)


def watch_of(world: World, thresholds: Thresholds = DEFAULTS) -> Watch:
    return Watch(
        world.repo,
        world.clock,
        tiers=["junior", "senior", "manager"],
        thresholds=thresholds,
        window=WINDOW,
        destinations=["slack", "teams"],
    )


async def announced(world: World) -> list[tuple[str, str, bool]]:
    """(channel, code, raised?) of every alert announcement written, oldest first."""
    rows = await world.repo.list_outbox(kind=OutboxKind.ALERT, status=OutboxStatus.PENDING)
    return sorted(
        (str(m.payload["channel"]), m.payload["alert"]["code"], m.payload["alert"]["active"])
        for m in rows
    )


def codes(flips: list[Alert]) -> list[tuple[str, bool]]:
    return sorted((a.code, a.active) for a in flips)


async def test_escalation_high_is_raised_once_then_cleared(world: World) -> None:
    watch = watch_of(world)
    for _ in range(12):
        await world.submit(confidence=0.3)

    first = await watch.evaluate()
    again = await watch.evaluate()

    assert codes(first) == [("escalation_high", True)]
    assert again == []
    assert await announced(world) == [
        ("slack", "escalation_high", True),
        ("teams", "escalation_high", True),
    ]
    [stored] = await world.repo.alerts(active_only=True)
    assert stored.figures == {"rate": 1.0, "escalated": 12, "of": 12}
    assert "12 of 12" in stored.message and "calibrate" in stored.message

    # The window moves past the burst: the sign no longer holds and is cleared once.
    world.clock.advance(WINDOW + timedelta(minutes=1))
    cleared = await watch.evaluate()
    assert codes(cleared) == [("escalation_high", False)]
    assert await watch.evaluate() == []
    assert await world.repo.alerts(active_only=True) == []
    assert (await announced(world)).count(("slack", "escalation_high", False)) == 1


async def test_escalation_low_when_nothing_reaches_a_person(world: World) -> None:
    watch = watch_of(world)
    for _ in range(20):
        await world.submit(confidence=0.95)

    assert codes(await watch.evaluate()) == [("escalation_low", True)]

    # Ten escalations among the thirty: 33%, inside the 5-40% band.
    for _ in range(10):
        await world.submit(confidence=0.3)
    assert codes(await watch.evaluate()) == [("escalation_low", False)]


async def test_rubber_stamping_reviewer_is_named_and_cleared(world: World) -> None:
    limits = Thresholds(escalation_high=1.0)  # this history escalates everything on purpose
    watch = watch_of(world, limits)
    ids = [await world.submit(confidence=0.3) for _ in range(20)]
    world.clock.advance(timedelta(seconds=2))
    for rid in ids:
        await world.engine.vote(rid, "web:sam", Verdict.APPROVE, channel="web")

    [raised] = await watch.evaluate()
    assert (raised.code, raised.subject) == ("rubber_stamp", "web:sam")
    assert raised.figures["decisions"] == 20 and raised.figures["approval_rate"] == 1.0
    assert raised.figures["median_seconds"] == 2.0

    world.clock.advance(WINDOW * 2)
    [cleared] = await watch.evaluate()
    assert (cleared.code, cleared.subject, cleared.active) == ("rubber_stamp", "web:sam", False)


async def test_slow_escalation_from_submit_to_card(world: World) -> None:
    watch = watch_of(world, Thresholds(escalation_high=1.0))
    await world.submit(confidence=0.3)
    world.clock.advance(timedelta(seconds=90))  # the card goes out 90 s late
    await world.worker.drain()

    [raised] = await watch.evaluate()
    assert raised.code == "slow_escalation" and raised.figures["p95_seconds"] == 90.0

    world.clock.advance(WINDOW * 2)
    assert codes(await watch.evaluate()) == [("slow_escalation", False)]


async def test_growing_queue_is_raised_per_tier_and_clears_when_worked_off(world: World) -> None:
    watch = watch_of(world, Thresholds(escalation_high=1.0))
    ids = []
    for _ in range(24):
        ids.append(await world.submit(confidence=0.3))
        world.clock.advance(timedelta(minutes=2))

    [raised] = await watch.evaluate()
    assert (raised.code, raised.subject) == ("queue_growing", "senior")
    assert raised.figures["now"] == 24

    for rid in ids:
        await world.engine.vote(rid, "web:sue", Verdict.APPROVE, channel="web")
    world.clock.advance(timedelta(minutes=5))
    assert codes(await watch.evaluate()) == [("queue_growing", False)]


async def test_rising_overrides(world: World) -> None:
    watch = watch_of(world, Thresholds(escalation_high=1.0))
    for verdict in [Verdict.APPROVE] * 6 + [Verdict.REJECT] * 6:
        rid = await world.submit(confidence=0.3)
        world.clock.advance(timedelta(minutes=4))
        await world.engine.vote(rid, "web:sam", verdict, channel="web", rationale="checked")

    [raised] = await watch.evaluate()
    assert raised.code == "override_rising"
    assert raised.figures == {"early": 0.0, "late": 1.0}


async def test_gather_reads_only_the_newest_of_a_busy_window(world: World) -> None:
    ids = []
    for _ in range(9):
        ids.append(await world.submit(confidence=0.3))
        world.clock.advance(timedelta(minutes=1))
    start = world.clock.now() - timedelta(minutes=30)

    capped = await gather(world.repo, start, limit=4)
    window = await gather(world.repo, world.clock.now() - timedelta(minutes=3, seconds=30))

    assert [r.id for r in capped.requests] == ids[-4:]
    # The audit records start where the kept requests start.
    assert {r.event.request_id for r in capped.records} >= set(ids[-4:])
    assert ids[0] not in {r.event.request_id for r in capped.records}
    assert [r.id for r in window.requests] == ids[-3:]


async def test_replicas_evaluating_at_once_announce_once(world: World) -> None:
    replicas = [watch_of(world) for _ in range(4)]
    for _ in range(12):
        await world.submit(confidence=0.3)

    flips = await asyncio.gather(*(w.evaluate() for w in replicas))

    assert sorted(len(f) for f in flips) == [0, 0, 0, 1]
    assert await announced(world) == [
        ("slack", "escalation_high", True),
        ("teams", "escalation_high", True),
    ]
