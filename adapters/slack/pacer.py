"""Pacing writes to Slack channels: about one message per second per channel, and a channel
that answered 429 is left alone for as long as its Retry-After asked."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from bot.core.errors import DeliveryError


class ChannelPacer:
    """Spaces calls per key (a channel id) `interval` seconds apart, in this process.

    `turn(key)` waits for the key's next slot: behind the other writes queued for it (the
    outbox runs a few deliveries per channel at once and renews their leases meanwhile),
    or through a short hold (Slack's usual `Retry-After: 1`, at most `max_wait`). A key
    held longer (a 429 asked for 30 s) raises a retryable DeliveryError at once, without
    calling Slack, so the outbox tries again later instead of a worker spinning or sleeping
    on it. `monotonic` and `sleep` are injectable so tests run on virtual time.
    """

    def __init__(
        self,
        interval: float = 1.0,
        *,
        max_wait: float = 2.0,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.interval = interval
        self.max_wait = max_wait
        self._monotonic = monotonic
        self._sleep = sleep
        self._ready: dict[str, float] = {}
        self._held: dict[str, float] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def turn(self, key: str) -> None:
        """Wait for `key`'s next slot and take it.

        Raises DeliveryError(retryable, retry_after) when the key is held for longer than
        `max_wait`.
        """
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            now = self._monotonic()
            ready = self._ready.get(key, now)
            wait = ready - now
            held = self._held.get(key, now) - now
            if held > self.max_wait:
                raise DeliveryError(
                    f"Slack asked to wait {held:.0f}s more before writing to {key}",
                    retryable=True,
                    retry_after=held,
                )
            if wait > 0:
                await self._sleep(wait)
            self._ready[key] = max(ready, now) + self.interval

    def hold(self, key: str, seconds: float) -> None:
        """Keep `key` quiet for `seconds` from now (Slack's Retry-After)."""
        until = self._monotonic() + max(seconds, 0.0)
        self._ready[key] = max(self._ready.get(key, until), until)
        self._held[key] = max(self._held.get(key, until), until)
