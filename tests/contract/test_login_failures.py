"""The web sign-in lock-out over every repository backend: counts shared by all replicas."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from adapters.web.sessions import LoginGuard
from bot.core.ports import Repository
from tests.contract._builders import T0

WINDOW = timedelta(minutes=15)


async def test_five_failures_lock_the_name_for_fifteen_minutes(repository: Repository) -> None:
    guard = LoginGuard(repository)
    for i in range(4):
        assert await guard.failed("Alice", T0 + timedelta(seconds=i)) is None
    until = await guard.failed("alice ", T0 + timedelta(seconds=4))
    assert until == T0 + timedelta(seconds=4, minutes=15)
    assert await guard.locked_until("ALICE", T0 + timedelta(minutes=10)) == until
    assert await guard.locked_until("bob", T0) is None
    # Failing again while locked neither lifts nor extends the lock.
    assert await guard.failed("alice", T0 + timedelta(minutes=5)) == until
    assert await guard.locked_until("alice", until) is None
    # After the lock the count starts again.
    assert await guard.failed("alice", until) is None


async def test_old_failures_and_a_success_are_forgotten(repository: Repository) -> None:
    guard = LoginGuard(repository)
    for i in range(4):
        await guard.failed("alice", T0 + timedelta(minutes=i))
    assert await guard.failed("alice", T0 + timedelta(minutes=20)) is None
    for _ in range(3):
        await guard.failed("bob", T0)
    await guard.succeeded("bob")
    for _ in range(4):
        assert await guard.failed("bob", T0) is None


async def test_concurrent_failures_from_several_replicas_all_count(
    repository: Repository,
) -> None:
    replicas = [LoginGuard(repository) for _ in range(5)]

    locks = await asyncio.gather(*(g.failed("carol", T0) for g in replicas))

    assert sum(lock is not None for lock in locks) == 1
    assert await replicas[0].locked_until("carol", T0 + timedelta(minutes=1)) == T0 + WINDOW


async def test_names_nobody_tried_for_a_day_are_forgotten(repository: Repository) -> None:
    guard = LoginGuard(repository)
    for name in ("typo1", "typo2"):
        await guard.failed(name, T0)
    await guard.failed("recent", T0 + timedelta(days=2))

    assert (await repository.login_failures("typo1")).recent == ()
    assert len((await repository.login_failures("recent")).recent) == 1
