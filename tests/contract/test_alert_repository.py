"""Alert state and canary requests in the Repository contract, on every backend."""

from __future__ import annotations

import asyncio
import dataclasses

from bot.core.domain import Alert, Change, OutboxKind
from bot.core.ports import Repository
from tests.contract._builders import T0, at, outbox, request


def sign(*, active: bool, minute: int = 0, message: str = "rate 45%") -> Alert:
    return Alert(
        code="escalation_high",
        subject="",
        active=active,
        message=message,
        figures={"rate": 0.45},
        raised_at=at(minute * 60),
        updated_at=at(minute * 60),
    )


async def test_raise_flips_once_and_writes_its_outbox_row(repository: Repository) -> None:
    first = await repository.flip_alert(sign(active=True), [outbox("al_1", kind=OutboxKind.ALERT)])
    again = await repository.flip_alert(
        sign(active=True, minute=1, message="rate 47%"), [outbox("al_2", kind=OutboxKind.ALERT)]
    )

    assert (first, again) == (True, False)
    assert await repository.get_outbox("al_1") is not None
    assert await repository.get_outbox("al_2") is None
    [stored] = await repository.alerts()
    # A repeat refreshes the figures but keeps the time it was first raised.
    assert stored.message == "rate 47%"
    assert stored.raised_at == T0
    assert stored.active


async def test_clear_flips_only_an_active_alert_and_a_later_raise_flips_again(
    repository: Repository,
) -> None:
    assert not await repository.flip_alert(sign(active=False))
    assert await repository.alerts() == []

    await repository.flip_alert(sign(active=True))
    cleared = await repository.flip_alert(
        sign(active=False, minute=5), [outbox("al_clear", kind=OutboxKind.ALERT)]
    )
    [stored] = await repository.alerts()
    assert cleared
    assert not stored.active
    assert stored.cleared_at == at(300)
    assert await repository.alerts(active_only=True) == []
    assert await repository.get_outbox("al_clear") is not None

    assert await repository.flip_alert(sign(active=True, minute=9))
    [again] = await repository.alerts(active_only=True)
    assert again.raised_at == at(540)
    assert again.cleared_at is None


async def test_concurrent_raises_flip_exactly_once(repository: Repository) -> None:
    results = await asyncio.gather(
        *(
            repository.flip_alert(sign(active=True), [outbox(f"al_{i}", kind=OutboxKind.ALERT)])
            for i in range(6)
        )
    )

    assert sorted(results) == [False] * 5 + [True]
    written = [await repository.get_outbox(f"al_{i}") for i in range(6)]
    assert sum(m is not None for m in written) == 1


async def test_alerts_are_told_apart_by_subject(repository: Repository) -> None:
    alice = dataclasses.replace(sign(active=True), code="rubber_stamp", subject="web:alice")
    bob = dataclasses.replace(alice, subject="web:bob", raised_at=at(60))

    assert await repository.flip_alert(alice)
    assert await repository.flip_alert(bob)

    assert [a.subject for a in await repository.alerts()] == ["web:bob", "web:alice"]


async def test_canary_flag_round_trips(repository: Repository) -> None:
    canary = dataclasses.replace(request(), canary=True)
    await repository.apply(Change(request=canary))

    stored = await repository.get(canary.id)
    assert stored is not None and stored.canary
