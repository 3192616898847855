"""The in-memory repository's web inbox sign-in records: failed logins and locks, sessions,
one-time login tokens (the counterpart of storage/_sql_sessions.py)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from datetime import datetime, timedelta

from bot.core.domain import LoginFailures, WebSession
from bot.core.errors import StorageError


class MemorySessions:
    """Sign-in records kept in process memory."""

    # Set by InMemoryRepository.__init__, which joins the parts.
    _lock: asyncio.Lock
    _logins: dict[tuple[str, str], LoginFailures]
    _sessions: dict[str, WebSession]
    _login_tokens: dict[str, tuple[str, datetime]]

    async def login_failures(self, login: str, address: str) -> LoginFailures:
        return self._logins.get((login, address), LoginFailures())

    async def record_login_failure(
        self, login: str, address: str, now: datetime, *, max_failures: int, window: timedelta
    ) -> LoginFailures:
        async with self._lock:
            key = (login, address)
            state = self._logins.get(key, LoginFailures())
            self._logins[key] = state.after_failure(now, max_failures, window)
            # Names nobody tried for a day (typos, guesses) are forgotten, as in SQL.
            stale = now - max(window, timedelta(days=1))
            for name, seen in list(self._logins.items()):
                last = max([*seen.recent, *([seen.locked_until] if seen.locked_until else [])])
                if last < stale:
                    del self._logins[name]
            return self._logins[key]

    async def forget_login_failures(self, login: str, address: str) -> None:
        self._logins.pop((login, address), None)

    async def create_web_session(self, session: WebSession) -> None:
        async with self._lock:
            stale = session.created_at - timedelta(days=1)
            self._sessions = {
                key: s
                for key, s in self._sessions.items()
                if s.expires_at >= stale and (s.revoked_at is None or s.revoked_at >= stale)
            }
            if session.id in self._sessions or any(
                s.token_sha256 == session.token_sha256 for s in self._sessions.values()
            ):
                raise StorageError(f"web session {session.id} exists")
            self._sessions[session.id] = session

    async def web_session(self, token_sha256: str) -> WebSession | None:
        for session in self._sessions.values():
            if session.token_sha256 == token_sha256:
                return session
        return None

    async def web_sessions(self, now: datetime) -> Sequence[WebSession]:
        active = [s for s in self._sessions.values() if s.active(now)]
        return sorted(active, key=lambda s: (s.created_at, s.id), reverse=True)

    async def revoke_web_session(self, session_id: str, now: datetime, by: str) -> bool:
        async with self._lock:
            session = self._sessions.get(session_id)
            if session is None or not session.active(now):
                return False
            self._sessions[session_id] = dataclasses.replace(session, revoked_at=now, revoked_by=by)
            return True

    async def add_login_token(
        self, digest: str, login: str, expires_at: datetime, now: datetime
    ) -> None:
        self._login_tokens = {d: t for d, t in self._login_tokens.items() if t[1] > now}
        self._login_tokens[digest] = (login, expires_at)

    async def peek_login_token(self, digest: str, now: datetime) -> str | None:
        found = self._login_tokens.get(digest)
        return found[0] if found is not None and found[1] > now else None

    async def redeem_login_token(self, digest: str, now: datetime) -> str | None:
        found = self._login_tokens.pop(digest, None)
        return found[0] if found is not None and found[1] > now else None
