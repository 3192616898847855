"""One-time web sign-in tokens over every repository backend: any replica redeems a token
another process issued, exactly once."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from adapters.web.sessions import LoginTokens
from bot.core.ports import Repository
from tests.contract._builders import T0

HOUR = timedelta(hours=1)


async def test_a_token_signs_in_once_and_expires(repository: Repository) -> None:
    tokens = LoginTokens(repository, ttl=HOUR)
    token = await tokens.issue("admin", T0)
    assert await tokens.peek(token, T0) == "admin"
    assert await tokens.peek(token, T0) == "admin"  # looking does not use it up
    assert await tokens.redeem(token, T0 + timedelta(minutes=59)) == "admin"
    assert await tokens.redeem(token, T0) is None
    assert await tokens.peek(token, T0) is None
    late = await tokens.issue("alice", T0)
    assert await tokens.peek(late, T0 + HOUR) is None
    assert await tokens.redeem(late, T0 + HOUR) is None
    assert await tokens.redeem("never-issued", T0) is None


async def test_only_the_digest_is_stored_and_tokens_are_distinct(repository: Repository) -> None:
    tokens = LoginTokens(repository, ttl=HOUR)
    first, second = await tokens.issue("admin", T0), await tokens.issue("admin", T0)
    assert first != second
    assert await repository.peek_login_token(first, T0) is None
    assert await repository.peek_login_token(LoginTokens._digest(first), T0) == "admin"


async def test_concurrent_redeems_on_several_replicas_sign_in_once(
    repository: Repository,
) -> None:
    token = await LoginTokens(repository).issue("admin", T0)
    replicas = [LoginTokens(repository) for _ in range(5)]

    logins = await asyncio.gather(*(r.redeem(token, T0) for r in replicas))

    assert logins.count("admin") == 1 and logins.count(None) == 4


async def test_issuing_drops_tokens_that_expired(repository: Repository) -> None:
    tokens = LoginTokens(repository, ttl=HOUR)
    old = await tokens.issue("admin", T0)
    await tokens.issue("admin", T0 + 2 * HOUR)
    # Gone from the store, not just refused: even a clock turned back cannot use it.
    assert await repository.peek_login_token(LoginTokens._digest(old), T0) is None
