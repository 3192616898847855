"""The web inbox's sign-in records: failed logins and locks, sessions, one-time login tokens."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import (
    delete,
    insert,
    select,
    update,
)

from bot.core.domain import (
    LoginFailures,
    WebSession,
    as_utc,
    isoformat,
)
from storage import _web_sessions
from storage._sql_base import SqlBase
from storage._sql_rows import (
    _insert_ignoring_duplicates,
    _login_failures,
)
from storage.models import (
    LoginFailureRow,
    LoginTokenRow,
    WebSessionRow,
)


class SqlSessions(SqlBase):
    """Rows behind web sign-ins."""

    async def login_failures(self, login: str, address: str) -> LoginFailures:
        async with self._read() as conn:
            found = await conn.execute(
                select(LoginFailureRow.recent, LoginFailureRow.locked_until).where(
                    LoginFailureRow.login == login, LoginFailureRow.address == address
                )
            )
            row = found.one_or_none()
        return _login_failures(row.recent, row.locked_until) if row else LoginFailures()

    async def record_login_failure(
        self, login: str, address: str, now: datetime, *, max_failures: int, window: timedelta
    ) -> LoginFailures:
        key = (LoginFailureRow.login == login, LoginFailureRow.address == address)
        async with self._write() as conn:
            # Create the row if need be, then lock it: concurrent failures on several
            # replicas count one after the other instead of overwriting each other.
            await conn.execute(
                _insert_ignoring_duplicates(
                    conn,
                    LoginFailureRow,
                    {
                        "login": login,
                        "address": address,
                        "recent": [],
                        "locked_until": None,
                        "updated_at": now,
                    },
                )
            )
            found = await conn.execute(
                select(LoginFailureRow.recent, LoginFailureRow.locked_until)
                .where(*key)
                .with_for_update()
            )
            row = found.one()
            state = _login_failures(row.recent, row.locked_until).after_failure(
                now, max_failures, window
            )
            await conn.execute(
                update(LoginFailureRow)
                .where(*key)
                .values(
                    recent=[isoformat(t) for t in state.recent],
                    locked_until=state.locked_until,
                    updated_at=now,
                )
            )
            # Names nobody tried for a day (typos, guesses) are forgotten.
            await conn.execute(
                delete(LoginFailureRow).where(
                    LoginFailureRow.updated_at < now - max(window, timedelta(days=1))
                )
            )
        return state

    async def forget_login_failures(self, login: str, address: str) -> None:
        async with self._write() as conn:
            await conn.execute(
                delete(LoginFailureRow).where(
                    LoginFailureRow.login == login, LoginFailureRow.address == address
                )
            )

    async def create_web_session(self, session: WebSession) -> None:
        async with self._write() as conn:
            await conn.execute(_web_sessions.forget_ended(session.created_at))
            await conn.execute(insert(WebSessionRow).values(**_web_sessions.values(session)))

    async def web_session(self, token_sha256: str) -> WebSession | None:
        async with self._read() as conn:
            row = (await conn.execute(_web_sessions.by_token(token_sha256))).mappings().first()
        return None if row is None else _web_sessions.from_row(row)

    async def web_sessions(self, now: datetime) -> Sequence[WebSession]:
        async with self._read() as conn:
            rows = (await conn.execute(_web_sessions.active(now))).mappings().all()
        return [_web_sessions.from_row(row) for row in rows]

    async def revoke_web_session(self, session_id: str, now: datetime, by: str) -> bool:
        async with self._write() as conn:
            found = await conn.execute(_web_sessions.revoke(session_id, now, by))
            return found.first() is not None

    async def add_login_token(
        self, digest: str, login: str, expires_at: datetime, now: datetime
    ) -> None:
        async with self._write() as conn:
            # Tokens are issued rarely, so issuing one is when the expired ones go.
            await conn.execute(delete(LoginTokenRow).where(LoginTokenRow.expires_at <= now))
            await conn.execute(
                insert(LoginTokenRow).values(digest=digest, login=login, expires_at=expires_at)
            )

    async def peek_login_token(self, digest: str, now: datetime) -> str | None:
        async with self._read() as conn:
            found = await conn.execute(
                select(LoginTokenRow.login).where(
                    LoginTokenRow.digest == digest, LoginTokenRow.expires_at > now
                )
            )
            return found.scalar_one_or_none()

    async def redeem_login_token(self, digest: str, now: datetime) -> str | None:
        async with self._write() as conn:
            # DELETE ... RETURNING: of two concurrent redeems only one deletes the row.
            found = await conn.execute(
                delete(LoginTokenRow)
                .where(LoginTokenRow.digest == digest)
                .returning(LoginTokenRow.login, LoginTokenRow.expires_at)
            )
            row = found.one_or_none()
        if row is None or as_utc(row.expires_at) <= now:
            return None
        return str(row.login)
