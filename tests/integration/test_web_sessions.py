"""Web inbox sessions are database rows: a sign-out or a revocation holds on every replica
and after a restart, sessions end after `web.session_ttl`, top-tier reviewers list and end
them on the dashboard, and a lock-out after failed passwords holds only for the address the
failures came from."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest

from bot.core.clock import ManualClock
from bot.server.app import build_services
from bot.server.config import LoadedConfig, parse_config
from bot.server.services import Services
from tests.conftest import POSTGRES_URL, RepoFactory
from tests.integration.test_web_inbox import (
    TIERS,
    browser,
    config,
    csrf,
    hashes,
    login,
    make_app,
)
from tests.support.loopback import LoopbackServer

COOKIE = "signoff_session"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    if name == "postgres" and not POSTGRES_URL:
        pytest.skip("SIGNOFF_TEST_POSTGRES_URL is not set")
    return name


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@asynccontextmanager
async def replica(
    repo_factory: RepoFactory, clock: ManualClock, loaded: LoadedConfig | None = None
) -> AsyncIterator[tuple[Services, Any]]:
    """One Signoff process: its own repository (connection pool), services and web inbox."""
    services = await build_services(
        loaded or config(), repo=await repo_factory(), clock=clock, start_scheduler=False
    )
    async with services.stack:
        yield services, make_app(services)


async def sign_out(client: httpx.AsyncClient) -> None:
    home = await client.get("/")
    assert home.status_code == 200
    assert (await client.post("/logout", data={"csrf": csrf(home.text)})).status_code == 303


async def opens(app: Any, cookie: str) -> bool:
    async with browser(app) as client:
        client.cookies.set(COOKIE, cookie)
        return (await client.get("/")).status_code == 200


async def test_a_signed_out_session_stays_out_after_a_restart(
    repo_factory: RepoFactory, clock: ManualClock
) -> None:
    async with replica(repo_factory, clock) as (_, app):
        async with browser(app) as alice, browser(app) as bob:
            assert (await login(alice, "alice")).status_code == 303
            assert (await login(bob, "bob")).status_code == 303
            copied = alice.cookies[COOKIE]  # e.g. left behind on a shared machine
            kept = bob.cookies[COOKIE]
            await sign_out(alice)
        assert not await opens(app, copied)

    async with replica(repo_factory, clock) as (_, restarted):
        assert not await opens(restarted, copied)
        assert await opens(restarted, kept)  # sessions not signed out survive the restart


async def test_two_replicas_on_one_database_share_sign_outs_and_revocations(
    repo_factory: RepoFactory, clock: ManualClock
) -> None:
    async with replica(repo_factory, clock) as (_, one), replica(repo_factory, clock) as (_, two):
        first, second = LoopbackServer(), LoopbackServer()
        async with first.serve(one), second.serve(two):
            async with (
                httpx.AsyncClient(base_url=first.url) as alice,
                httpx.AsyncClient(base_url=first.url) as jan,
                httpx.AsyncClient(base_url=second.url) as bob,
            ):
                assert (await login(alice, "alice")).status_code == 303
                assert (await login(jan, "jan")).status_code == 303
                assert (await login(bob, "bob")).status_code == 303
                alice_cookie, jan_cookie = alice.cookies[COOKIE], jan.cookies[COOKIE]
                # A session opened on one replica works on the other ...
                assert await opens(two, alice_cookie) and await opens(two, jan_cookie)
                # ... and signing out on one ends it on the other.
                await sign_out(alice)
                assert not await opens(two, alice_cookie)
                # A top-tier reviewer on the second replica ends jan's session of the first.
                board = await bob.get("/dashboard")
                [jan_id] = re.findall(
                    r'data-session-id="([^"]+)"[^>]*>\s*<td[^>]*>Jan ', board.text
                )
                ended = await bob.post(
                    f"/sessions/{jan_id}/revoke", data={"csrf": csrf(board.text)}
                )
                assert ended.status_code == 303 and "flash=revoked" in ended.headers["location"]
                assert (await jan.get("/")).status_code == 303
    # And after both replicas restart, neither session comes back.
    async with replica(repo_factory, clock) as (_, restarted):
        assert not await opens(restarted, alice_cookie)
        assert not await opens(restarted, jan_cookie)


async def test_sessions_end_after_the_configured_ttl(
    repo_factory: RepoFactory, clock: ManualClock
) -> None:
    data = {"agents": [], "tiers": TIERS, "web": {"reviewers": hashes(), "session_ttl": "1h"}}
    async with replica(repo_factory, clock, parse_config(data, env={})) as (_, app):
        async with browser(app) as client:
            signed = await login(client, "alice")
            assert "max-age=3600" in signed.headers["set-cookie"].lower()
            clock.advance(timedelta(minutes=59))
            assert (await client.get("/")).status_code == 200
            clock.advance(timedelta(minutes=1))
            assert (await client.get("/")).status_code == 303


async def test_the_top_tier_lists_and_ends_sessions_on_the_dashboard(
    repo_factory: RepoFactory, clock: ManualClock
) -> None:
    async with replica(repo_factory, clock) as (services, app):
        async with browser(app) as alice, browser(app) as jan:
            assert (await login(alice, "alice")).status_code == 303
            assert (await login(jan, "jan")).status_code == 303
            sessions = {s.login: s for s in await services.repo.web_sessions(clock.now())}
            assert set(sessions) == {"alice", "jan"}

            # A junior reviewer sees no list and may not end anyone's session.
            junior_board = await jan.get("/dashboard")
            assert junior_board.status_code == 200 and "Signed-in sessions" not in junior_board.text
            refused = await jan.post(
                f"/sessions/{sessions['alice'].id}/revoke", data={"csrf": csrf(junior_board.text)}
            )
            assert refused.status_code == 403 and "may sign sessions out" in refused.text
            assert (await alice.get("/")).status_code == 200

            board = await alice.get("/dashboard")
            assert "Signed-in sessions" in board.text
            assert board.text.count("data-session-id=") == 2
            assert "this session" in board.text and "password" in board.text
            ended = await alice.post(
                f"/sessions/{sessions['jan'].id}/revoke", data={"csrf": csrf(board.text)}
            )
            assert ended.headers["location"] == "/dashboard?flash=revoked#sessions"
            assert (await jan.get("/")).status_code == 303
            again = await alice.post(
                f"/sessions/{sessions['jan'].id}/revoke", data={"csrf": csrf(board.text)}
            )
            assert again.headers["location"] == "/dashboard?flash=no_session#sessions"
            stored = await services.repo.web_session(sessions["jan"].token_sha256)
            assert stored is not None and stored.revoked_by == "web:alice"


@asynccontextmanager
async def from_address(address: str, url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A browser whose connections come from `address` (any 127.x.y.z is this machine)."""
    transport = httpx.AsyncHTTPTransport(local_address=address)
    async with httpx.AsyncClient(transport=transport, base_url=url) as client:
        yield client


async def test_a_stranger_cannot_lock_a_reviewer_out_from_elsewhere(
    repo_factory: RepoFactory, clock: ManualClock
) -> None:
    async with replica(repo_factory, clock) as (_, app):
        server = LoopbackServer()
        async with server.serve(app):
            async with from_address("127.0.0.2", server.url) as stranger:
                for _ in range(4):
                    assert (await login(stranger, "bob", "guess")).status_code == 401
                fifth = await login(stranger, "bob", "guess")
                assert fifth.status_code == 429 and "locked for 15 minutes" in fifth.text
                # From the stranger's address, even the right password waits out the lock.
                right_there = await login(stranger, "bob")
                assert right_there.status_code == 429 and "Too many failed" in right_there.text
            async with from_address("127.0.0.3", server.url) as bob:
                assert (await login(bob, "bob")).status_code == 303
                assert (await bob.get("/")).status_code == 200
