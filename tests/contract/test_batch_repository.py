"""The batch-card part of the Repository contract, on every backend.

One open card per group (tier, kind, channel, target), whoever asks first; rewrites only
at the version read; a posted card's reference stored with the outbox result.
"""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta
from typing import Any

from bot.core.domain import BatchCard, BatchStatus, OutboxKind, OutboxResult, OutboxStatus
from bot.core.ports import Repository
from tests.contract._builders import T0, at, outbox

LEASE = timedelta(seconds=60)


def card(batch_id: str = "bat_0001", **changes: Any) -> BatchCard:
    base = BatchCard(
        id=batch_id,
        tier="junior",
        kind="invoice",
        channel="slack",
        target="C0JUNIOR",
        members=("req_0001", "req_0002", "req_0003"),
        total=3,
        status=BatchStatus.OPEN,
        created_at=T0,
        updated_at=T0,
    )
    return dataclasses.replace(base, **changes)


def post(message_id: str) -> Any:
    return dataclasses.replace(
        outbox(message_id, kind=OutboxKind.POST_BATCH, request_id=None),
        payload={"batch_id": "bat_0001"},
    )


async def test_open_batch_stores_the_card_and_its_outbox_row(repository: Repository) -> None:
    assert await repository.open_batch(card(), [post("msg_1")])

    assert await repository.batch("bat_0001") == card(version=1)
    assert [b.id for b in await repository.open_batches()] == ["bat_0001"]
    [message] = await repository.list_outbox(kind=OutboxKind.POST_BATCH)
    assert message.payload == {"batch_id": "bat_0001"} and message.request_id is None
    assert await repository.batch("bat_nope") is None


async def test_a_group_has_one_open_card_and_the_loser_writes_nothing(
    repository: Repository,
) -> None:
    assert await repository.open_batch(card("bat_0001"), [post("msg_1")])

    assert not await repository.open_batch(card("bat_0002"), [post("msg_2")])

    assert await repository.batch("bat_0002") is None
    assert [m.id for m in await repository.list_outbox()] == ["msg_1"]
    # Other groups (another channel, target, kind or tier) are independent.
    for other in (
        card("bat_0003", channel="teams"),
        card("bat_0004", target="C0OTHER"),
        card("bat_0005", kind="refund"),
        card("bat_0006", tier="senior"),
    ):
        assert await repository.open_batch(other)
    assert len(await repository.open_batches()) == 5


async def test_concurrent_opens_of_one_group_store_exactly_one(repository: Repository) -> None:
    results = await asyncio.gather(
        *(repository.open_batch(card(f"bat_{n:04d}"), [post(f"msg_{n}")]) for n in range(6))
    )

    assert sorted(results) == [False] * 5 + [True]
    assert len(await repository.open_batches()) == 1
    assert len(await repository.list_outbox(kind=OutboxKind.POST_BATCH)) == 1


async def test_update_batch_needs_the_version_read_and_an_open_card(
    repository: Repository,
) -> None:
    await repository.open_batch(card())
    rewritten = card(members=("req_0002", "req_0003"), total=2, updated_at=at(5))
    update = dataclasses.replace(post("msg_u1"), kind=OutboxKind.UPDATE_BATCH)

    assert await repository.update_batch(rewritten, 1, [update])
    assert not await repository.update_batch(card(members=("req_0009",)), 1)

    stored = await repository.batch("bat_0001")
    assert stored == dataclasses.replace(rewritten, version=2)
    assert [m.id for m in await repository.list_outbox()] == ["msg_u1"]

    closed = dataclasses.replace(rewritten, status=BatchStatus.CLOSED, total=0)
    assert await repository.update_batch(closed, 2)
    assert await repository.open_batches() == []
    assert not await repository.update_batch(rewritten, 3)  # closed cards stay closed
    # Once closed, the group may get a new card.
    assert await repository.open_batch(card("bat_0002"))


async def test_finish_outbox_stores_the_posted_batch_reference(repository: Repository) -> None:
    await repository.open_batch(card(), [post("msg_1")])
    [claimed] = await repository.claim_outbox("w1", at(1), LEASE, 10)
    ref = {"channel": "C0JUNIOR", "ts": "1.000001"}

    done = OutboxResult(OutboxStatus.DONE, batch_ref=("bat_0001", ref))
    assert await repository.finish_outbox(claimed.id, "w1", done)

    stored = await repository.batch("bat_0001")
    assert stored is not None and stored.ref == ref and stored.version == 1
