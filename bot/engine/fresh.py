"""A replica's short-lived copy of stored values it reads on every submit.

The agent's stop state and the standing approvals are read for each submission; reading
them from the database every time costs a pooled connection, a ping and a round trip per
submit, more than the rest of the submit together. A copy is trusted for `ttl` seconds.
Changes made by this replica replace or drop it at once, changes made by another replica
drop it through a notification, and the TTL bounds how long a lost notification can keep
an old copy.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Fresh(Generic[K, V]):
    """Per key, the value `read(key)` returned less than `ttl` seconds ago.

    One read per key at a time: when the copy expires under load, every caller arriving
    during the read waits for it instead of starting its own.
    """

    def __init__(
        self,
        read: Callable[[K], Awaitable[V]],
        *,
        ttl: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._read = read
        self.ttl = ttl
        self._monotonic = monotonic
        self._copies: dict[K, tuple[float, V]] = {}
        # Bumped by every change and invalidation, so a read that raced one is not kept.
        self._generation = 0
        self._reads: dict[tuple[K, int], asyncio.Future[V]] = {}

    async def get(self, key: K) -> V:
        now = self._monotonic()
        copy = self._copies.get(key)
        if copy is not None and now - copy[0] < self.ttl:
            return copy[1]
        slot = (key, self._generation)
        reading = self._reads.get(slot)
        if reading is None:
            reading = asyncio.ensure_future(self._read_and_keep(key, now))
            self._reads[slot] = reading
            reading.add_done_callback(lambda _: self._reads.pop(slot, None))
        # Shielded: one caller cancelled (its client went away) must not cancel the read
        # the others wait on.
        return await asyncio.shield(reading)

    async def _read_and_keep(self, key: K, started: float) -> V:
        generation = self._generation
        value = await self._read(key)
        # Stamped with the time before the read: a change committed during it must not be
        # trusted for longer than the TTL promises. A read that an invalidation overtook is
        # not kept at all (and callers after the invalidation started a new one).
        if generation == self._generation:
            self._copies[key] = (started, value)
        return value

    def put(self, key: K, value: V) -> None:
        """This replica just stored `value`: use it from now on."""
        self._generation += 1
        self._copies[key] = (self._monotonic(), value)

    def forget(self, key: K | None = None) -> None:
        """Drop the copy of `key`, or every copy (None): it changed elsewhere, or
        notifications may have been lost."""
        self._generation += 1
        if key is None:
            self._copies.clear()
        else:
            self._copies.pop(key, None)
