"""`Pacer` on virtual time: a hold set while a caller waits is honoured, `serial` keeps a key
to one call in flight, and Slack's edits are paced per workspace at Tier 3."""

from __future__ import annotations

import asyncio

import pytest

from adapters.slack import ChannelPacer
from adapters.slack.pacer import EDIT_INTERVAL, EDITS
from bot.core.errors import RateLimited
from bot.core.pacing import PRUNE_AT, Pacer
from tests.unit.slack.test_pacer import FakeTime


async def test_a_hold_set_while_a_caller_waits_its_turn_is_waited_out_too() -> None:
    clock = FakeTime()
    pacer = Pacer(1.0, monotonic=clock.monotonic, sleep=clock.sleep)
    await pacer.turn("C1")  # the next turn is at 1001

    async def throttled_meanwhile() -> None:
        # Runs while the second turn sleeps towards 1001: the first call's 429 arrives.
        pacer.hold("C1", 1.5)

    await asyncio.gather(pacer.turn("C1"), throttled_meanwhile())
    assert clock.now == pytest.approx(1002.5)  # not 1001: the hold was checked again


async def test_serial_keeps_a_key_to_one_call_until_its_answer() -> None:
    clock = FakeTime()
    pacer = Pacer(0, monotonic=clock.monotonic, sleep=clock.sleep)
    order: list[str] = []

    async def call(name: str, throttle: bool) -> None:
        try:
            async with pacer.serial("thread"):
                order.append(f"{name} sent")
                await asyncio.sleep(0)
                if throttle:
                    pacer.hold("thread", 30)  # a 429 with Retry-After: 30
                order.append(f"{name} answered")
        except RateLimited as exc:
            order.append(f"{name} deferred {exc.retry_after:.0f}s")

    await asyncio.gather(call("a", True), call("b", False))
    assert order == ["a sent", "a answered", "b deferred 30s"]


async def test_slack_edits_are_paced_per_workspace_and_unpaced_means_unpaced() -> None:
    clock = FakeTime()
    paced = ChannelPacer(monotonic=clock.monotonic, sleep=clock.sleep)
    await paced.turn(EDITS)
    await paced.turn(EDITS)
    assert clock.now == pytest.approx(1000 + EDIT_INTERVAL)
    unpaced = ChannelPacer(0, monotonic=clock.monotonic, sleep=clock.sleep)
    before = clock.now
    for _ in range(5):
        await unpaced.turn(EDITS)
        await unpaced.turn("C1")
    assert clock.now == before


async def test_idle_keys_are_forgotten_and_held_ones_kept() -> None:
    clock = FakeTime()
    pacer = Pacer(0.5, monotonic=clock.monotonic, sleep=clock.sleep)
    pacer.hold("throttled", 3600)
    for n in range(PRUNE_AT + 10):
        await pacer.turn(f"thread-{n}")
        clock.now += 1  # each thread's slot has passed by the next call
    assert pacer.keys < PRUNE_AT
    with pytest.raises(RateLimited):
        await pacer.turn("throttled")
