"""Pacing writes to Slack: about one message per second per channel, edits at Tier 3's 50
a minute per workspace, and a key that answered 429 left alone for as long as its
Retry-After asked (`bot.core.pacing`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping

from bot.core.pacing import Pacer

# `chat.update` is a Tier 3 method: about 50 calls a minute per workspace, whatever channel.
EDITS = "chat.update"
EDIT_INTERVAL = 60 / 50


class ChannelPacer(Pacer):
    """A `Pacer` with Slack's figures: `interval` between messages to one channel (the key
    is the channel id) and `EDIT_INTERVAL` between edits anywhere (the key `EDITS`);
    `ChannelPacer(0)` paces nothing (benchmarks of Signoff's own latency)."""

    def __init__(
        self,
        interval: float = 1.0,
        *,
        intervals: Mapping[str, float] | None = None,
        max_wait: float = 2.0,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if intervals is None:
            intervals = {EDITS: EDIT_INTERVAL if interval > 0 else 0.0}
        super().__init__(
            interval,
            intervals=intervals,
            max_wait=max_wait,
            service="Slack",
            monotonic=monotonic,
            sleep=sleep,
        )
