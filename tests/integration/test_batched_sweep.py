"""The SLA sweep and the reminders in batches: many items per transaction, and an item that
another writer changed between the batch's read and its write is decided again alone."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any

from bot.core.clock import ManualClock
from bot.core.domain import Change, Status, Verdict, verify_chain
from bot.core.ports import Repository
from bot.engine.machine import SWEEP_BATCH
from tests.conftest import RepoFactory
from tests.support.world import World, make_config


class Interloper:
    """The repository, with another writer's change landing just before the first batch
    write (as another replica's vote would, between the sweep's read and its write)."""

    def __init__(self, repo: Repository, before: Callable[[str], Awaitable[object]]) -> None:
        self._repo = repo
        self._before: Callable[[str], Awaitable[object]] | None = before
        self.batches: list[int] = []

    async def apply_many(self, changes: Sequence[Change]) -> Sequence[Exception | None]:
        if self._before is not None and changes[0].request is not None:
            before, self._before = self._before, None
            await before(changes[0].request.id)
        self.batches.append(len(changes))
        return await self._repo.apply_many(changes)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._repo, name)


async def test_a_sweep_moves_batches_and_redoes_alone_what_another_writer_changed(
    repo_factory: RepoFactory,
) -> None:
    clock = ManualClock()
    repo = await repo_factory()
    submitter = World(repo, make_config(), clock)
    count = SWEEP_BATCH + 30
    ids = [await submitter.submit(confidence=0.2) for _ in range(count)]
    voted: list[str] = []

    async def vote_elsewhere(request_id: str) -> None:
        await submitter.engine.vote(request_id, "web:sam", Verdict.APPROVE, channel="web")
        voted.append(request_id)

    interloper = Interloper(repo, vote_elsewhere)
    sweeper = World(interloper, make_config(), clock)  # type: ignore[arg-type]
    clock.advance(timedelta(hours=2))

    assert await sweeper.engine.sweep(limit=1000) == count - 1
    assert interloper.batches == [SWEEP_BATCH, count - SWEEP_BATCH]
    decided = await repo.get(voted[0])
    assert decided is not None and decided.status is Status.APPROVED
    assert decided.tier == "senior" and len(decided.history) == 1  # never moved
    moved = [r for r in await repo.get_many(ids) if r.id != voted[0]]
    assert all(r.tier == "manager" and len(r.history) == 2 for r in moved)
    records = await repo.audit_records()
    assert sum(r.event.event == "escalated" for r in records) == count - 1
    assert verify_chain(records).ok
    assert await sweeper.engine.sweep(limit=1000) == 0


async def test_reminders_go_out_in_batches_once_each(repo_factory: RepoFactory) -> None:
    clock = ManualClock()
    junior = {"low": "junior", "medium": "junior", "high": "junior"}
    world = World(await repo_factory(), make_config(routing={"start_tier": junior}), clock)
    ids = [await world.submit(confidence=0.2) for _ in range(SWEEP_BATCH + 5)]
    clock.advance(timedelta(minutes=11))  # junior reminds after 10 minutes
    assert await world.engine.remind(limit=1000) == len(ids)
    assert await world.engine.remind(limit=1000) == 0
    records = await world.repo.audit_records()
    assert sum(r.event.event == "reminded" for r in records) == len(ids)
