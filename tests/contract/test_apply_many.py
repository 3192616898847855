"""`apply_many` and `get_many`, the batched sweep's storage calls, on every backend."""

from __future__ import annotations

import dataclasses

from bot.core.domain import Change, TierMove, verify_chain
from bot.core.errors import VersionConflict
from bot.core.ports import Repository
from tests.contract._builders import at, event, outbox, request


def escalated(item_id: str, version: int) -> Change:
    """A tier move of `item_id` (stored at `version`) with its outbox row and audit event."""
    original = request(item_id)
    move = TierMove("junior", "senior", at(50), "sla")
    moved = dataclasses.replace(
        original, tier="senior", history=(*original.history, move), updated_at=at(50)
    )
    return Change(
        request=moved,
        expected_version=version,
        new_moves=(move,),
        outbox=(outbox(f"msg_{item_id}", request_id=item_id),),
        audit=(event("escalated", request_id=item_id),),
    )


async def test_a_batch_writes_every_change_whole(repository: Repository) -> None:
    ids = [f"req_{n:04d}" for n in range(1, 6)]
    for item_id in ids:
        await repository.apply(Change(request=request(item_id)))

    outcomes = await repository.apply_many([escalated(i, 1) for i in ids])

    assert outcomes == [None] * 5
    stored = await repository.get_many(ids)
    assert [r.id for r in stored] == ids
    assert all(r.tier == "senior" and r.version == 2 and len(r.history) == 2 for r in stored)
    assert {m.request_id for m in await repository.list_outbox(limit=10)} == set(ids)
    records = await repository.audit_records()
    assert [r.event.event for r in records] == ["escalated"] * 5
    assert verify_chain(records).ok


async def test_a_refused_change_costs_the_others_nothing(repository: Repository) -> None:
    ids = [f"req_{n:04d}" for n in range(1, 4)]
    for item_id in ids:
        await repository.apply(Change(request=request(item_id)))
    await repository.apply(escalated(ids[1], 1))  # another writer moved the second first

    outcomes = await repository.apply_many([escalated(i, 1) for i in ids])

    assert outcomes[0] is None and outcomes[2] is None
    assert isinstance(outcomes[1], VersionConflict)
    assert [r.version for r in await repository.get_many(ids)] == [2, 2, 2]
    records = await repository.audit_records()
    assert len(records) == 3  # one event per move: the refused change wrote nothing
    assert verify_chain(records).ok


async def test_get_many_keeps_the_order_asked_and_skips_unknown_ids(
    repository: Repository,
) -> None:
    for item_id in ("req_0001", "req_0002"):
        await repository.apply(Change(request=request(item_id)))
    found = await repository.get_many(["req_0002", "req_9999", "req_0001"])
    assert [r.id for r in found] == ["req_0002", "req_0001"]
    assert await repository.get_many([]) == []
