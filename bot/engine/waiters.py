"""Wakes long-polls when a request changes, here or (through the notifier) on another replica.

Every waiter also polls, so a missed wake-up costs at most one poll interval, never a wrong
answer.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict


class Waiters:
    def __init__(self) -> None:
        self._events: defaultdict[str, set[asyncio.Event]] = defaultdict(set)

    def notify(self, request_id: str | None) -> None:
        if request_id is None:
            return
        for event in self._events.pop(request_id, set()):
            event.set()

    def notify_all(self) -> None:
        """Wake every waiter (notifications may have been lost; each one re-reads)."""
        events, self._events = self._events, defaultdict(set)
        for waiting in events.values():
            for event in waiting:
                event.set()

    async def wait(self, request_id: str, timeout: float) -> None:  # noqa: ASYNC109
        """Return when `request_id` changes here, or after `timeout` seconds."""
        event = asyncio.Event()
        self._events[request_id].add(event)
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            pass
        finally:
            waiting = self._events.get(request_id)
            if waiting is not None:
                waiting.discard(event)
                if not waiting:
                    del self._events[request_id]
