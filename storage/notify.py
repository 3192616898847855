"""`bot.core.ports.Notifier`: tell the other replicas on one database that something changed.

PostgreSQL carries notifications with LISTEN/NOTIFY: every replica holds one dedicated
connection that LISTENs (outside the pool, reconnected with backoff when it drops) and sends
its own notifications through the repository's pool, many to one statement. SQLite serves
one process, so its notifier (`InMemoryNotifier`) only reaches notifiers in the same process
that share its hub, which is how tests play several replicas without a server.

A notification is a hint, never the truth: receivers re-read the database, and a lost one
costs latency (the long-poll's fallback poll and the scheduler's periodic tick catch up).
So nothing here raises for a database that is down; it logs and tries again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from sqlalchemy import exc as sa_exc
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["CHANNEL_PREFIX", "InMemoryNotifier", "PostgresNotifier"]

log = logging.getLogger("signoff.notify")

# PostgreSQL channel names are identifiers; ours are `signoff_<channel>`.
CHANNEL_PREFIX = "signoff_"
# NOTIFY payloads must stay under 8000 bytes; ours are ids, so this only guards mistakes.
MAX_PAYLOAD = 7000
# Seconds between attempts to re-establish the LISTEN connection: doubling up to the cap.
RECONNECT_FIRST, RECONNECT_CAP = 0.2, 5.0
# How long `start()` waits for the first LISTEN before it lets the process serve anyway.
START_WAIT = 5.0
# The LISTEN connection is otherwise silent, so TCP keepalives find a peer that vanished.
_KEEPALIVE = {
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
}

Callback = Callable[[str], None]


def _origin() -> str:
    return secrets.token_hex(6)


def _split(raw: str) -> tuple[str, str]:
    origin, _, payload = raw.partition(" ")
    return origin, payload


class _Subscribers:
    def __init__(self) -> None:
        self.by_channel: defaultdict[str, list[Callback]] = defaultdict(list)

    def add(self, channel: str, callback: Callback) -> None:
        self.by_channel[channel].append(callback)

    def dispatch(self, channel: str, payload: str) -> None:
        for callback in list(self.by_channel.get(channel, ())):
            try:
                callback(payload)
            except Exception:  # one broken subscriber must not silence the others
                log.exception("notification subscriber for %s failed", channel)


class InMemoryNotifier:
    """Notifiers sharing one `hub` (a list) reach each other, within one process.

    Alone (the default) it reaches nobody, which is right for SQLite: one process, whose
    own commits wake its long-polls and kick its outbox directly.
    """

    def __init__(self, hub: list[InMemoryNotifier] | None = None) -> None:
        self._hub = hub if hub is not None else []
        self._hub.append(self)
        self._subscribers = _Subscribers()

    def subscribe(self, channel: str, callback: Callback) -> None:
        self._subscribers.add(channel, callback)

    def publish(self, channel: str, payload: str) -> None:
        loop = asyncio.get_running_loop()
        for peer in self._hub:
            if peer is not self:
                loop.call_soon(peer._subscribers.dispatch, channel, payload)

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        if self in self._hub:
            self._hub.remove(self)


class PostgresNotifier:
    """LISTEN/NOTIFY on the repository's PostgreSQL database.

    `engine` is the repository's engine: notifications are sent through its pool, and the
    LISTEN connection is opened with the same connection arguments. Notifications this
    notifier sent itself are not delivered back to it (the payload carries an origin).
    """

    def __init__(self, engine: AsyncEngine) -> None:
        if engine.dialect.name != "postgresql":
            raise ValueError("PostgresNotifier needs a PostgreSQL engine")
        self._engine = engine
        self._origin = _origin()
        self._subscribers = _Subscribers()
        self._queued: dict[tuple[str, str], None] = {}
        self._wake = asyncio.Event()
        self._listening = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False
        self._connections = 0

    @property
    def listening(self) -> bool:
        """Whether the LISTEN connection is up right now."""
        return self._listening.is_set()

    def subscribe(self, channel: str, callback: Callback) -> None:
        """Register before `start()`: the LISTENs are issued when the connection opens."""
        self._subscribers.add(channel, callback)

    def publish(self, channel: str, payload: str) -> None:
        """Queue a notification; a background task sends what queued up in one statement."""
        if self._closed:
            return
        if len(payload) > MAX_PAYLOAD:
            raise ValueError(f"notification payload longer than {MAX_PAYLOAD} characters")
        self._queued[(CHANNEL_PREFIX + channel, f"{self._origin} {payload}")] = None
        self._wake.set()

    async def start(self) -> None:
        """Begin listening and sending; waits (briefly) for the first LISTEN to be in place."""
        self._tasks = [
            asyncio.create_task(self._listen(), name="signoff-listen"),
            asyncio.create_task(self._send(), name="signoff-notify"),
        ]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._listening.wait(), START_WAIT)

    async def close(self) -> None:
        """Send what is queued (best effort), then stop both tasks and the LISTEN connection."""
        self._closed = True
        if self._queued:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._flush(), 2.0)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    # -- sending ------------------------------------------------------------------------

    async def _send(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self._flush()
            except (sa_exc.SQLAlchemyError, OSError) as exc:
                # Dropped, not retried: a late hint is worth little and the ticks catch up.
                log.debug("notification not sent: %s", exc)
            except Exception:  # this task must outlive any surprise
                log.exception("notification not sent")

    async def _flush(self) -> None:
        batch, self._queued = list(self._queued), {}
        if not batch:
            return
        channels = [channel for channel, _ in batch]
        payloads = [payload for _, payload in batch]
        async with self._engine.connect() as conn:
            await conn.execute(
                text(
                    "SELECT pg_notify(c, p)"
                    " FROM unnest(CAST(:c AS text[]), CAST(:p AS text[])) AS t(c, p)"
                ),
                {"c": channels, "p": payloads},
            )
            await conn.commit()

    # -- listening ----------------------------------------------------------------------

    def _connect_args(self) -> dict[str, Any]:
        _args, kwargs = self._engine.dialect.create_connect_args(self._engine.url)
        kwargs.pop("context", None)
        kwargs.setdefault("connect_timeout", 5)
        for key, value in _KEEPALIVE.items():
            kwargs.setdefault(key, value)
        return dict(kwargs)

    async def _listen(self) -> None:
        # Imported here, not at the top: the base install has no PostgreSQL driver, and
        # this module is imported on SQLite too.
        import psycopg
        from psycopg import sql

        delay = RECONNECT_FIRST
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    autocommit=True, **self._connect_args()
                ) as conn:
                    for channel in self._subscribers.by_channel:
                        name = CHANNEL_PREFIX + channel
                        await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(name)))
                    self._listening.set()
                    delay = RECONNECT_FIRST
                    if self._connections:
                        log.info("listening again after a lost connection")
                    self._caught_up()
                    async for note in conn.notifies():
                        origin, payload = _split(note.payload)
                        if origin != self._origin and note.channel.startswith(CHANNEL_PREFIX):
                            self._subscribers.dispatch(note.channel[len(CHANNEL_PREFIX) :], payload)
            except psycopg.Error as exc:
                if self._listening.is_set():
                    log.warning("lost the LISTEN connection, reconnecting: %s", exc)
                else:
                    log.debug("cannot LISTEN yet: %s", exc)
            except Exception:  # this task must outlive any surprise
                log.exception("LISTEN failed, reconnecting")
            self._listening.clear()
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECONNECT_CAP)

    def _caught_up(self) -> None:
        """After a (re)connect, notifications sent meanwhile are lost: wake everyone once."""
        if self._connections:
            for channel in list(self._subscribers.by_channel):
                self._subscribers.dispatch(channel, "")
        self._connections += 1
