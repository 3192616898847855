"""Pacing writes to a chat platform per key (a channel, a thread, a method), and honouring
the `Retry-After` of a key the platform throttled.

Slack asks for about one message per second per channel and counts edits per workspace;
Teams counts every call per bot per thread. A channel adapter takes a turn on the key its
platform counts the call against before making it; a 429 holds that key for as long as its
Retry-After asked, and nothing is sent to it meanwhile (a turn re-checks the hold after it
slept, so a hold set while it waited is honoured too).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping

from bot.core.errors import RateLimited

# Waits shorter than this are not slept: a clock of microsecond steps (a test's virtual
# time) could otherwise never get past the last fraction.
_SLACK = 0.001
# Keys are forgotten once idle (Teams paces each card's own thread: millions a day), looked
# for whenever this many are known.
PRUNE_AT = 1024


class Pacer:
    """Spaces calls per key `interval` seconds apart (`intervals` per key), in this process.

    `turn(key)` waits for the key's next slot: behind the other calls queued for it (the
    outbox runs a few deliveries per destination at once and renews their leases
    meanwhile), or through a short hold (the usual `Retry-After: 1`, at most `max_wait`).
    A key held longer (a 429 asked for 30 s) raises RateLimited at once,
    without calling the platform, so the outbox tries again when the hold ends instead of a
    worker sleeping on it. `serial()` also keeps the key to one call in flight, so a 429
    reaches the next caller before it sends. `monotonic` and `sleep` are injectable so tests
    run on virtual time.
    """

    def __init__(
        self,
        interval: float = 1.0,
        *,
        intervals: Mapping[str, float] | None = None,
        max_wait: float = 2.0,
        service: str = "the platform",
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.interval = interval
        self.intervals = dict(intervals or {})
        self.max_wait = max_wait
        self.service = service
        self._monotonic = monotonic
        self._sleep = sleep
        self._ready: dict[str, float] = {}
        self._held: dict[str, float] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._calls: dict[str, asyncio.Lock] = {}
        self._prune_at = PRUNE_AT

    @property
    def keys(self) -> int:
        """How many keys the pacer remembers (idle ones are forgotten as it goes)."""
        return len(self._ready)

    async def turn(self, key: str) -> None:
        """Wait for `key`'s next slot and take it.

        Raises RateLimited (a retryable DeliveryError with `retry_after`) when the key is
        held for longer than `max_wait`.
        """
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            while True:
                now = self._monotonic()
                held = self._held.get(key, now) - now
                if held > self.max_wait:
                    raise RateLimited(
                        f"{self.service} asked to wait {held:.0f}s more before writing to {key}",
                        retry_after=held,
                    )
                wait = max(self._ready.get(key, now), self._held.get(key, now)) - now
                if wait < _SLACK:
                    break
                await self._sleep(wait)
            self._ready[key] = now + self.intervals.get(key, self.interval)
            if len(self._ready) >= self._prune_at:
                self._prune(now)

    def _prune(self, now: float) -> None:
        """Forget keys whose slot and hold have passed and that nobody waits on."""
        for key in [k for k, ready in self._ready.items() if ready < now]:
            if self._held.get(key, now - 1) >= now:
                continue
            busy = (self._locks.get(key), self._calls.get(key))
            if any(lock is not None and lock.locked() for lock in busy):
                continue
            for known in (self._ready, self._held, self._locks, self._calls):
                known.pop(key, None)
        self._prune_at = max(PRUNE_AT, 2 * len(self._ready))

    @contextlib.asynccontextmanager
    async def serial(self, key: str) -> AsyncIterator[None]:
        """Take `key`'s turn and keep the key to this one call until the block ends."""
        async with self._calls.setdefault(key, asyncio.Lock()):
            await self.turn(key)
            yield

    def hold(self, key: str, seconds: float) -> None:
        """Keep `key` quiet for `seconds` from now (the platform's Retry-After)."""
        until = self._monotonic() + max(seconds, 0.0)
        self._ready[key] = max(self._ready.get(key, until), until)
        self._held[key] = max(self._held.get(key, until), until)
