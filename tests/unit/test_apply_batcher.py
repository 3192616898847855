"""Group commit's rules, on fake writers: who shares a batch, and what is redone alone."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from bot.core.domain import AuditEvent, Change, utcnow
from bot.core.errors import StorageError, VersionConflict
from storage._batch import ApplyBatcher, BatchRefused


def change(name: str) -> Change:
    return Change(audit=(AuditEvent(name, utcnow()),))


def name_of(c: Change) -> str:
    return c.audit[0].event


class Writers:
    def __init__(self, *, refuse: str | None = None, commit_fails: bool = False) -> None:
        self.alone: list[str] = []
        self.together: list[list[str]] = []
        self.refuse = refuse
        self.commit_fails = commit_fails

    async def one(self, c: Change) -> None:
        await asyncio.sleep(0)
        if name_of(c) == self.refuse:
            raise VersionConflict(f"{name_of(c)} is stale")
        self.alone.append(name_of(c))

    async def many(self, changes: Sequence[Change]) -> None:
        await asyncio.sleep(0)
        names = [name_of(c) for c in changes]
        if self.refuse in names:
            raise BatchRefused("one of them is stale")
        if self.commit_fails:
            raise StorageError("connection lost during COMMIT")
        self.together.append(names)


async def test_changes_that_queue_up_are_written_together_in_order() -> None:
    writers = Writers()
    batcher = ApplyBatcher(writers.one, writers.many)
    await asyncio.gather(*(batcher.apply(change(f"c{n}")) for n in range(5)))
    assert writers.alone == []
    assert writers.together == [["c0", "c1", "c2", "c3", "c4"]]


async def test_a_lone_change_is_written_alone() -> None:
    writers = Writers()
    batcher = ApplyBatcher(writers.one, writers.many)
    await batcher.apply(change("only"))
    assert writers.alone == ["only"] and writers.together == []


async def test_a_refused_batch_is_redone_one_by_one() -> None:
    writers = Writers(refuse="c2")
    batcher = ApplyBatcher(writers.one, writers.many)
    results = await asyncio.gather(
        *(batcher.apply(change(f"c{n}")) for n in range(4)), return_exceptions=True
    )
    assert [type(r).__name__ for r in results] == [
        "NoneType",
        "NoneType",
        "VersionConflict",
        "NoneType",
    ]
    assert writers.alone == ["c0", "c1", "c3"]


async def test_a_failed_commit_is_not_redone_but_reported_to_every_caller() -> None:
    writers = Writers(commit_fails=True)
    batcher = ApplyBatcher(writers.one, writers.many)
    results = await asyncio.gather(
        *(batcher.apply(change(f"c{n}")) for n in range(3)), return_exceptions=True
    )
    assert all(isinstance(r, StorageError) for r in results)
    assert writers.alone == []


async def test_batches_are_capped() -> None:
    writers = Writers()
    batcher = ApplyBatcher(writers.one, writers.many, max_batch=2)
    await asyncio.gather(*(batcher.apply(change(f"c{n}")) for n in range(5)))
    assert writers.together == [["c0", "c1"], ["c2", "c3"]]
    assert writers.alone == ["c4"]


async def test_close_waits_for_queued_changes() -> None:
    writers = Writers()
    batcher = ApplyBatcher(writers.one, writers.many)
    pending = asyncio.ensure_future(batcher.apply(change("late")))
    await asyncio.sleep(0)
    await batcher.close()
    assert writers.alone == ["late"]
    await pending


@pytest.mark.parametrize("count", [1, 3])
async def test_a_cancelled_drain_fails_its_callers_instead_of_hanging(count: int) -> None:
    gate = asyncio.Event()

    async def stuck(_: object) -> None:
        await gate.wait()

    batcher = ApplyBatcher(stuck, stuck)
    callers = [asyncio.ensure_future(batcher.apply(change(f"c{n}"))) for n in range(count)]
    await asyncio.sleep(0.01)
    assert batcher._drainer is not None
    batcher._drainer.cancel()
    results = await asyncio.gather(*callers, return_exceptions=True)
    assert all(isinstance(r, asyncio.CancelledError) for r in results)
