"""The platforms' documented rate limits, as the fakes enforce them (when switched on).

Slack (https://api.slack.com/apis/rate-limits): `chat.postMessage` allows about one message
per second per channel "with short bursts"; other methods have a tier, counted per method
per workspace: Tier 1 1+/min, Tier 2 20+/min, Tier 3 50+/min, Tier 4 100+/min, each with
"occasional bursts". Beyond, Slack answers HTTP 429 with a `Retry-After` header (whole
seconds) and `{"ok": false, "error": "ratelimited"}`. Modelled as token buckets: one token
per second per channel with a burst of 3 for `chat.postMessage`, a tier's rate per minute
with a burst of a tenth of it (at least 2) for the others.

Teams (https://learn.microsoft.com/microsoftteams/platform/bots/how-to/rate-limit): per bot
per thread, 7 operations in 1 s, 8 in 2 s, 60 in 30 s and 1,800 in 3,600 s, for creating a
conversation, sending to one and updating an activity alike; beyond, HTTP 429 with
`Retry-After`. Modelled as sliding windows per (bot, thread): a new thread in a channel
counts against the channel, a send or edit against the thread.

Both remember what they refused: a caller that comes back to the same key before the
`Retry-After` it was given has its call listed in `early` (and refused again).
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

TEAMS_WINDOWS: tuple[tuple[float, int], ...] = ((1.0, 7), (2.0, 8), (30.0, 60), (3600.0, 1800))

SLACK_TIERS: dict[str, int] = {"tier1": 1, "tier2": 20, "tier3": 50, "tier4": 100}
SLACK_METHOD_TIERS: dict[str, str] = {
    "chat.update": "tier3",
    "chat.postEphemeral": "tier4",
    "views.open": "tier4",
    "views.update": "tier4",
    "users.info": "tier4",
    "apps.connections.open": "tier1",
}
POST_MESSAGE_BURST = 3


@dataclass(frozen=True)
class Refusal:
    """A 429 answered for `key` at `at`, asking the caller to wait `retry_after` seconds."""

    key: str
    at: float
    retry_after: int


@dataclass(frozen=True)
class EarlyCall:
    """A call to `key` at `at`, before `allowed_at` that an earlier 429 named."""

    key: str
    at: float
    allowed_at: float


class _Limiter:
    """Answers `check(key, at)`: None (allowed, counted) or a Retry-After in whole seconds."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._until: dict[str, float] = {}
        self.refusals: list[Refusal] = []
        self.early: list[EarlyCall] = []

    def check(self, key: str, at: float) -> int | None:
        with self._lock:
            until = self._until.get(key)
            if until is not None and at < until:
                self.early.append(EarlyCall(key, at, until))
            wait = self._take(key, at)
            if wait is None:
                return None
            seconds = max(math.ceil(wait), 1)
            self._until[key] = max(self._until.get(key, at), at + seconds)
            self.refusals.append(Refusal(key, at, seconds))
            return seconds

    def _take(self, key: str, at: float) -> float | None:
        raise NotImplementedError

    def reset(self) -> None:
        with self._lock:
            self._until.clear()
            self.refusals.clear()
            self.early.clear()
            self._forget()

    def _forget(self) -> None:
        raise NotImplementedError


class TokenBuckets(_Limiter):
    """A bucket per key: `rate_for(key)` tokens a second up to `burst_for(key)`."""

    def __init__(self, rate_for: Callable[[str], float], burst_for: Callable[[str], float]) -> None:
        super().__init__()
        self._rate_for = rate_for
        self._burst_for = burst_for
        self._buckets: dict[str, tuple[float, float]] = {}

    def _take(self, key: str, at: float) -> float | None:
        rate, burst = self._rate_for(key), self._burst_for(key)
        tokens, last = self._buckets.get(key, (burst, at))
        tokens = min(burst, tokens + (at - last) * rate)
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, at)
            return None
        self._buckets[key] = (tokens, at)
        return (1.0 - tokens) / rate

    def _forget(self) -> None:
        self._buckets.clear()


class SlidingWindows(_Limiter):
    """At most `n` calls per key within any `seconds`, for every (seconds, n) given."""

    def __init__(self, windows: Sequence[tuple[float, int]]) -> None:
        super().__init__()
        self._windows = tuple(windows)
        self._longest = max(seconds for seconds, _ in self._windows)
        self._calls: dict[str, deque[float]] = {}

    def _take(self, key: str, at: float) -> float | None:
        calls = self._calls.setdefault(key, deque())
        while calls and calls[0] <= at - self._longest:
            calls.popleft()
        wait = 0.0
        for seconds, limit in self._windows:
            inside = [t for t in calls if t > at - seconds]
            if len(inside) >= limit:
                # The window frees a slot when its oldest call that still counts leaves it.
                wait = max(wait, inside[-limit] + seconds - at)
        if wait > 0:
            return wait
        calls.append(at)
        return None

    def _forget(self) -> None:
        self._calls.clear()


def slack_limits() -> TokenBuckets:
    """Keys: `chat.postMessage:<channel>` or the method name (per workspace)."""

    def rate(key: str) -> float:
        if key.startswith("chat.postMessage:"):
            return 1.0
        return SLACK_TIERS[SLACK_METHOD_TIERS[key]] / 60.0

    def burst(key: str) -> float:
        if key.startswith("chat.postMessage:"):
            return float(POST_MESSAGE_BURST)
        return float(max(SLACK_TIERS[SLACK_METHOD_TIERS[key]] // 10, 2))

    return TokenBuckets(rate, burst)


def slack_key(method: str, args: dict[str, object]) -> str | None:
    """The bucket a Slack call counts against, or None for a method without a limit here."""
    if method == "chat.postMessage":
        return f"chat.postMessage:{args.get('channel', '')}"
    return method if method in SLACK_METHOD_TIERS else None


def teams_limits() -> SlidingWindows:
    return SlidingWindows(TEAMS_WINDOWS)
