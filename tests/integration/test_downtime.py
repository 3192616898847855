"""Time moves honestly across an outage (issue 15, section 5).

Items are due at every tier when the service goes down for 12 s. After the restart each
overdue item moves one tier and gets that tier's full window and reminder from the move;
none crosses several tiers, and none reaches on_timeout (here: approve low risk) before
every tier had its window while the service was up.
"""

from __future__ import annotations

from datetime import timedelta

from bot.core.clock import ManualClock
from bot.core.domain import ApprovalRequest, Status
from tests.conftest import RepoFactory
from tests.support.world import World, make_config

SLA = timedelta(seconds=5)
REMIND = timedelta(seconds=2)
TIERS = [
    {"name": name, "sla": "5s", "remind_after": "2s", "reviewers": [f"web:{name}"]}
    for name in ("junior", "senior", "manager")
]


async def get(world: World, rid: str) -> ApprovalRequest:
    found = await world.repo.get(rid)
    assert found is not None
    return found


async def test_a_12_second_outage_moves_each_overdue_item_one_tier(
    repo_factory: RepoFactory,
) -> None:
    clock = ManualClock()
    config = make_config(
        tiers=TIERS,
        routing={
            "start_tier": {"low": "junior", "medium": "junior", "high": "junior"},
            "on_timeout": {"low": "approve", "medium": "reject", "high": "reject"},
            "rules": [{"name": "refund", "when": 'action.kind == "refund"', "risk": "low"}],
        },
    )
    up = World(await repo_factory(), config, clock)
    # Low risk (the rule), which on_timeout approves: the stampede approved such an item.
    at_manager = await up.submit(kind="refund")
    clock.advance(SLA)
    assert await up.engine.sweep() == 1
    at_senior = await up.submit(kind="refund")
    clock.advance(SLA)
    assert await up.engine.sweep() == 2
    at_junior = await up.submit(kind="refund")
    tiers = {rid: (await get(up, rid)).tier for rid in (at_junior, at_senior, at_manager)}
    assert tiers == {at_junior: "junior", at_senior: "senior", at_manager: "manager"}

    # Down for 12 s: every one of the three deadlines passes meanwhile.
    clock.advance(timedelta(seconds=12))
    restarted = clock.now()
    back = World(await repo_factory(), config, clock)

    # Sweeps every second for four seconds: the stampede would run them up the chain.
    for _ in range(4):
        await back.engine.sweep()
        clock.advance(timedelta(seconds=1))

    junior, senior, manager = [await get(back, r) for r in (at_junior, at_senior, at_manager)]
    assert (junior.tier, senior.tier, manager.tier) == ("senior", "manager", "manager")
    assert all(r.status is Status.PENDING for r in (junior, senior, manager))
    for item in (junior, senior, manager):
        # The whole window (and its reminder) counted from the restart's first sweep.
        assert item.deadline_at == restarted + SLA
    assert junior.remind_at == restarted + REMIND and senior.remind_at == restarted + REMIND
    assert [m.to_tier for m in junior.history[1:]] == ["senior"]
    assert [m.to_tier for m in senior.history[1:]] == ["senior", "manager"]
    moves = [r.event for r in await back.repo.audit_records(request_id=at_manager)]
    assert [e.event for e in moves].count("sla_restarted") == 1

    # Each tier now gets its window while the service is up, then the next one.
    clock.advance(timedelta(seconds=1, milliseconds=1))  # restart + 5 s
    assert await back.engine.sweep() == 3
    junior, senior, manager = [await get(back, r) for r in (at_junior, at_senior, at_manager)]
    assert junior.tier == "manager" and junior.deadline_at == clock.now() + SLA
    for ended in (senior, manager):
        assert ended.status is Status.APPROVED and ended.decided_at == clock.now()
        assert [v.reviewer for v in ended.votes] == ["policy"]
