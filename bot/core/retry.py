"""When to try a resume webhook again: a pure policy over attempt counts (no clock, no I/O).

The schedule backs off fast at first (a blip or a deploy on the agent's side heals in seconds
to minutes) and then settles to hourly, so an agent that is down overnight still gets its
result in the morning without Signoff hammering it. It stops once the scheduled waits would
pass 24 hours: by then a human should look, and the delivery becomes `dead` (visible in
`GET /v1/deliveries?status=dead`, re-sendable by `POST /v1/deliveries/{id}/retry`).
"""

from __future__ import annotations

import itertools
import math
import random
from datetime import timedelta

RETRY_HORIZON = timedelta(hours=24)
"""No retry is scheduled past this much total waiting since the first attempt."""

JITTER = 0.10
"""Each wait is scaled by a factor in [1 - JITTER, 1 + JITTER] so that many deliveries that
failed together (the agent was down) do not all come back in the same second."""

_BACKOFF = (5, 30, 120, 600, 1800, 3600)


def _schedule(backoff: tuple[int, ...], horizon: timedelta) -> tuple[int, ...]:
    """The backoff, then its last step repeated, for as long as the total fits the horizon."""
    steps = itertools.chain(backoff, itertools.repeat(backoff[-1]))
    delays: list[int] = []
    delay = next(steps)
    while sum(delays) + delay <= horizon.total_seconds():
        delays.append(delay)
        delay = next(steps)
    return tuple(delays)


RETRY_SCHEDULE: tuple[int, ...] = _schedule(_BACKOFF, RETRY_HORIZON)
"""Seconds to wait after attempt n (index n - 1): 5, 30, 120, 600, 1800, 3600, then hourly."""

MAX_ATTEMPTS = len(RETRY_SCHEDULE) + 1
"""The first attempt plus one retry per scheduled wait."""


def next_delay(attempts: int, retry_after: float | None, rng: random.Random) -> timedelta | None:
    """How long to wait before the next attempt, or None when the delivery is dead.

    `attempts` counts the attempts made so far (1 after the first failure). A `Retry-After`
    the receiver sent wins when it asks for longer than the jittered wait (it knows its own
    load), but is capped at `RETRY_HORIZON` so one header cannot park a delivery for a week;
    a shorter one is ignored so a receiver cannot make us retry faster than the schedule.
    `rng` is passed in so that tests and replays are deterministic.

    Raises ValueError if `attempts` < 1.
    """
    if attempts < 1:
        raise ValueError(f"attempts must be at least 1, got {attempts}")
    if attempts > len(RETRY_SCHEDULE):
        return None
    seconds = RETRY_SCHEDULE[attempts - 1] * rng.uniform(1 - JITTER, 1 + JITTER)
    if retry_after is not None and not math.isnan(retry_after):
        seconds = max(seconds, min(retry_after, RETRY_HORIZON.total_seconds()))
    return timedelta(seconds=seconds)
