"""Statements and row conversion for web inbox sessions (`web_sessions`)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Delete, Select, Update, and_, delete, or_, select, update
from sqlalchemy.engine import RowMapping

from bot.core.domain import WebSession, as_utc
from storage.models import WebSessionRow

# Ended sessions are kept a day, so a revocation stays visible while anyone cares.
KEEP_ENDED = timedelta(days=1)


def values(session: WebSession) -> dict[str, Any]:
    return {
        "id": session.id,
        "token_sha256": session.token_sha256,
        "login": session.login,
        "name": session.name,
        "method": session.method,
        "fingerprint": session.fingerprint,
        "address": session.address,
        "created_at": session.created_at,
        "expires_at": session.expires_at,
        "revoked_at": session.revoked_at,
        "revoked_by": session.revoked_by,
    }


def from_row(row: RowMapping) -> WebSession:
    revoked_at = row["revoked_at"]
    return WebSession(
        id=row["id"],
        token_sha256=row["token_sha256"],
        login=row["login"],
        name=row["name"],
        method=row["method"],
        fingerprint=row["fingerprint"],
        address=row["address"],
        created_at=as_utc(row["created_at"]),
        expires_at=as_utc(row["expires_at"]),
        revoked_at=None if revoked_at is None else as_utc(revoked_at),
        revoked_by=row["revoked_by"],
    )


def forget_ended(now: datetime) -> Delete:
    stale = now - KEEP_ENDED
    return delete(WebSessionRow).where(
        or_(WebSessionRow.expires_at < stale, WebSessionRow.revoked_at < stale)
    )


def by_token(token_sha256: str) -> Select[Any]:
    return select(WebSessionRow.__table__).where(WebSessionRow.token_sha256 == token_sha256)


def active(now: datetime) -> Select[Any]:
    return (
        select(WebSessionRow.__table__)
        .where(WebSessionRow.revoked_at.is_(None), WebSessionRow.expires_at > now)
        .order_by(WebSessionRow.created_at.desc(), WebSessionRow.id.desc())
    )


def revoke(session_id: str, now: datetime, by: str) -> Update:
    return (
        update(WebSessionRow)
        .where(
            and_(
                WebSessionRow.id == session_id,
                WebSessionRow.revoked_at.is_(None),
                WebSessionRow.expires_at > now,
            )
        )
        .values(revoked_at=now, revoked_by=by)
        .returning(WebSessionRow.id)
    )
