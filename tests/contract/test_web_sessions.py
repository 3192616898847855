"""Web inbox sessions over every repository backend: what one replica revokes, all see."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from bot.core.domain import WebSession
from bot.core.errors import StorageError
from bot.core.ports import Repository
from tests.contract._builders import T0

TTL = timedelta(hours=12)


def session(number: int, *, at: timedelta = timedelta(0), ttl: timedelta = TTL) -> WebSession:
    return WebSession(
        id=f"ws_{number}",
        token_sha256=f"{number:064x}",
        login=f"user{number}@example.com",
        name=f"Ünïcode <User {number}>",
        method="oidc",
        fingerprint=f"fp{number}",
        address="203.0.113.7",
        created_at=T0 + at,
        expires_at=T0 + at + ttl,
    )


async def test_a_session_reads_back_whole(repository: Repository) -> None:
    stored = session(1)
    await repository.create_web_session(stored)

    assert await repository.web_session(stored.token_sha256) == stored
    assert await repository.web_session("f" * 64) is None


async def test_active_sessions_are_listed_newest_first(repository: Repository) -> None:
    for number in (1, 2, 3):
        await repository.create_web_session(session(number, at=timedelta(minutes=number)))
    await repository.create_web_session(session(4, ttl=timedelta(minutes=1)))

    listed = await repository.web_sessions(T0 + timedelta(minutes=5))

    assert [s.id for s in listed] == ["ws_3", "ws_2", "ws_1"]


async def test_revocation_ends_a_session_once(repository: Repository) -> None:
    await repository.create_web_session(session(1))
    await repository.create_web_session(session(2))
    now = T0 + timedelta(minutes=30)

    assert await repository.revoke_web_session("ws_1", now, "web:alice") is True
    assert await repository.revoke_web_session("ws_1", now, "web:bob") is False
    assert await repository.revoke_web_session("ws_missing", now, "web:bob") is False

    revoked = await repository.web_session(session(1).token_sha256)
    assert revoked is not None and not revoked.active(now)
    assert (revoked.revoked_at, revoked.revoked_by) == (now, "web:alice")
    assert [s.id for s in await repository.web_sessions(now)] == ["ws_2"]


async def test_an_expired_session_cannot_be_revoked_or_listed(repository: Repository) -> None:
    await repository.create_web_session(session(1))
    later = T0 + TTL

    assert await repository.web_sessions(later) == []
    assert await repository.revoke_web_session("ws_1", later, "web:alice") is False


async def test_sessions_ended_over_a_day_ago_are_forgotten(repository: Repository) -> None:
    await repository.create_web_session(session(1, ttl=timedelta(hours=1)))
    await repository.create_web_session(session(2))
    await repository.revoke_web_session("ws_2", T0 + timedelta(minutes=1), "web:alice")
    await repository.create_web_session(session(3))

    await repository.create_web_session(session(4, at=timedelta(days=2)))

    assert await repository.web_session(session(1).token_sha256) is None
    assert await repository.web_session(session(2).token_sha256) is None
    assert await repository.web_session(session(3).token_sha256) is None
    assert await repository.web_session(session(4).token_sha256) is not None


async def test_a_session_id_or_secret_is_never_stored_twice(repository: Repository) -> None:
    await repository.create_web_session(session(1))
    with pytest.raises(StorageError):
        await repository.create_web_session(dataclasses.replace(session(2), id="ws_1"))
    with pytest.raises(StorageError):
        await repository.create_web_session(
            dataclasses.replace(session(2), token_sha256=session(1).token_sha256)
        )
