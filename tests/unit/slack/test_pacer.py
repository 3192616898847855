"""ChannelPacer on virtual time: spacing per channel, Retry-After holds, no spinning."""

from __future__ import annotations

import asyncio

import pytest

from adapters.slack import ChannelPacer
from bot.core.errors import DeliveryError


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


def pacer(clock: FakeTime, interval: float = 1.0) -> ChannelPacer:
    return ChannelPacer(interval, monotonic=clock.monotonic, sleep=clock.sleep)


async def test_one_write_per_interval_per_channel() -> None:
    clock = FakeTime()
    p = pacer(clock)
    taken: list[tuple[str, float]] = []
    for channel in ["C1", "C1", "C2", "C1", "C2"]:
        await p.turn(channel)
        taken.append((channel, clock.now))
    assert taken == [("C1", 1000.0), ("C1", 1001.0), ("C2", 1001.0), ("C1", 1002.0), ("C2", 1002.0)]


async def test_concurrent_writers_to_one_channel_queue_up() -> None:
    clock = FakeTime()
    p = pacer(clock, interval=0.5)
    times: list[float] = []

    async def write() -> None:
        await p.turn("C1")
        times.append(clock.now)

    await asyncio.gather(*(write() for _ in range(5)))
    assert times == [1000.0, 1000.5, 1001.0, 1001.5, 1002.0]


async def test_a_short_hold_is_waited_out_and_a_long_one_defers_without_waiting() -> None:
    clock = FakeTime()
    p = pacer(clock)
    p.hold("C1", 2)  # Slack's usual Retry-After for chat.postMessage is 1 s
    await p.turn("C1")
    assert clock.now == 1002.0
    p.hold("C1", 30)
    with pytest.raises(DeliveryError) as caught:
        await p.turn("C1")
    assert caught.value.retryable and caught.value.retry_after == pytest.approx(30)
    assert clock.now == 1002.0  # it did not sleep on it
    await p.turn("C2")  # other channels are not held
    clock.now += 30
    await p.turn("C1")


async def test_a_hold_never_shortens_an_existing_one() -> None:
    clock = FakeTime()
    p = pacer(clock)
    p.hold("C1", 30)
    p.hold("C1", 1)
    with pytest.raises(DeliveryError):
        await p.turn("C1")
