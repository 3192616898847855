"""The web sign-in lock-out over every repository backend: counts shared by all replicas,
kept per (login, client address)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from adapters.web.sessions import LoginGuard
from bot.core.ports import Repository
from tests.contract._builders import T0

WINDOW = timedelta(minutes=15)
HERE = "203.0.113.7"
ELSEWHERE = "198.51.100.9"


async def test_five_failures_lock_the_name_for_fifteen_minutes(repository: Repository) -> None:
    guard = LoginGuard(repository)
    for i in range(4):
        assert await guard.failed("Alice", HERE, T0 + timedelta(seconds=i)) is None
    until = await guard.failed("alice ", HERE, T0 + timedelta(seconds=4))
    assert until == T0 + timedelta(seconds=4, minutes=15)
    assert await guard.locked_until("ALICE", HERE, T0 + timedelta(minutes=10)) == until
    assert await guard.locked_until("bob", HERE, T0) is None
    # Failing again while locked neither lifts nor extends the lock.
    assert await guard.failed("alice", HERE, T0 + timedelta(minutes=5)) == until
    assert await guard.locked_until("alice", HERE, until) is None
    # After the lock the count starts again.
    assert await guard.failed("alice", HERE, until) is None


async def test_a_lock_holds_only_for_the_address_that_failed(repository: Repository) -> None:
    guard = LoginGuard(repository)
    for _ in range(5):
        await guard.failed("alice", ELSEWHERE, T0)

    assert await guard.locked_until("alice", ELSEWHERE, T0) == T0 + WINDOW
    assert await guard.locked_until("alice", HERE, T0) is None
    assert (await repository.login_failures("alice", HERE)).recent == ()
    # A success here clears nothing of the stranger's count there.
    await guard.succeeded("alice", HERE)
    assert await guard.locked_until("alice", ELSEWHERE, T0) == T0 + WINDOW


async def test_old_failures_and_a_success_are_forgotten(repository: Repository) -> None:
    guard = LoginGuard(repository)
    for i in range(4):
        await guard.failed("alice", HERE, T0 + timedelta(minutes=i))
    assert await guard.failed("alice", HERE, T0 + timedelta(minutes=20)) is None
    for _ in range(3):
        await guard.failed("bob", HERE, T0)
    await guard.succeeded("bob", HERE)
    for _ in range(4):
        assert await guard.failed("bob", HERE, T0) is None


async def test_concurrent_failures_from_several_replicas_all_count(
    repository: Repository,
) -> None:
    replicas = [LoginGuard(repository) for _ in range(5)]

    locks = await asyncio.gather(*(g.failed("carol", HERE, T0) for g in replicas))

    assert sum(lock is not None for lock in locks) == 1
    assert await replicas[0].locked_until("carol", HERE, T0 + timedelta(minutes=1)) == T0 + WINDOW


async def test_names_nobody_tried_for_a_day_are_forgotten(repository: Repository) -> None:
    guard = LoginGuard(repository)
    for name in ("typo1", "typo2"):
        await guard.failed(name, HERE, T0)
    await guard.failed("recent", HERE, T0 + timedelta(days=2))

    assert (await repository.login_failures("typo1", HERE)).recent == ()
    assert len((await repository.login_failures("recent", HERE)).recent) == 1
