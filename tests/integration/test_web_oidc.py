"""Signing in to the web inbox through an OpenID Connect provider run on loopback.

The provider (tests/support/oidc_provider.py) is a real HTTP server with discovery, JWKS,
authorization and token endpoints and RS256-signed ID tokens; Signoff runs on a real
uvicorn too, and one cookie-keeping HTTP client plays the browser between them.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from adapters.web.oidc import CALLBACK_PATH, PENDING_COOKIE
from bot.core.clock import ManualClock
from bot.core.domain import Status
from bot.server.app import build_services, create_app
from bot.server.config import parse_config
from bot.server.services import Services
from bot.server.web import web_inbox
from tests.conftest import RepoFactory
from tests.support.loopback import LoopbackServer
from tests.support.oidc_provider import CLIENT_ID, CLIENT_SECRET, OidcProvider, Tamper

KEY = "sk_test_ops_bot"
ENV = {
    "SIGNOFF_SESSION_SECRET": "test-session-secret-0123456789",
    "OIDC_CLIENT_SECRET": CLIENT_SECRET,
}
OLGA = "web:olga@example.com"


@pytest.fixture
def backend() -> str:
    return "sqlite"


@dataclass
class World:
    signoff: str
    provider: OidcProvider
    services: Services


@pytest.fixture
async def world(repo_factory: RepoFactory) -> AsyncIterator[World]:
    clock = ManualClock()
    provider = OidcProvider(now=clock.now)
    signoff = LoopbackServer()
    provider.redirect_uris.append(signoff.url + CALLBACK_PATH)
    data: dict[str, Any] = {
        "public_url": signoff.url,
        "agents": [{"id": "ops-bot", "key_sha256": hashlib.sha256(KEY.encode()).hexdigest()}],
        "tiers": [
            {"name": "junior", "sla": "15m", "reviewers": ["web:jan"]},
            {"name": "senior", "sla": "1h", "reviewers": ["web:sam"]},
            {"name": "manager", "sla": "4h", "reviewers": [OLGA]},
        ],
        "web": {
            "oidc": {
                "issuer": provider.issuer,
                "client_id": CLIENT_ID,
                "client_secret_env": "OIDC_CLIENT_SECRET",
            }
        },
    }
    config = parse_config(data, env=ENV)
    services = await build_services(
        config, repo=await repo_factory(), clock=clock, start_scheduler=False
    )
    async with services.stack:
        web_inbox(services, env=ENV)
        app = create_app(config, services=services)
        async with provider.server.serve(provider.app()), signoff.serve(app):
            yield World(signoff.url, provider, services)


def browser() -> httpx.AsyncClient:
    return httpx.AsyncClient(timeout=10)


async def through_the_provider(client: httpx.AsyncClient, world: World) -> httpx.Response:
    """Start at Signoff, pass the provider, and return Signoff's answer to the callback."""
    start = await client.get(f"{world.signoff}/login/oidc", params={"next": "/"})
    assert start.status_code == 303, start.text
    authorize = await client.get(start.headers["location"])
    assert authorize.status_code == 302, authorize.text
    back = authorize.headers["location"]
    assert back.startswith(world.signoff + CALLBACK_PATH)
    return await client.get(back)


def csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


async def signed_in(client: httpx.AsyncClient, world: World) -> bool:
    home = await client.get(f"{world.signoff}/")
    return home.status_code == 200


async def test_the_login_page_offers_the_identity_provider(world: World) -> None:
    async with browser() as client:
        page = await client.get(f"{world.signoff}/login")

    host = urlsplit(world.provider.issuer).netloc
    assert f"Sign in with {host}</a>" in page.text
    assert 'href="/login/oidc?next=/"' in page.text
    # No passwords and no one-time admin link when only the provider signs people in.
    assert 'name="password"' not in page.text and "one-time link" not in page.text


async def test_a_reviewer_signs_in_through_the_provider_and_acts(world: World) -> None:
    async with httpx.AsyncClient(
        base_url=world.signoff, headers={"Authorization": f"Bearer {KEY}"}
    ) as agent:
        submitted = await agent.post(
            "/v1/requests",
            json={"action": {"kind": "invoice", "summary": "File INV-9"}, "confidence": 0.3},
        )
        assert submitted.status_code == 201, submitted.text
        rid = submitted.json()["id"]

    async with browser() as client:
        start = await client.get(f"{world.signoff}/login/oidc", params={"next": f"/requests/{rid}"})
        sent = parse_qs(urlsplit(start.headers["location"]).query)
        assert sent["client_id"] == [CLIENT_ID]
        assert sent["code_challenge_method"] == ["S256"]
        assert sent["scope"] == ["openid email profile"]
        assert sent["redirect_uri"] == [world.signoff + CALLBACK_PATH]
        assert len(sent["state"][0]) >= 32 and len(sent["nonce"][0]) >= 32
        authorize = await client.get(start.headers["location"])
        callback = await client.get(authorize.headers["location"])
        assert callback.status_code == 303, callback.text
        assert callback.headers["location"] == f"/requests/{rid}"
        # The code went back with the PKCE verifier and the client's secret (checked there).
        assert world.provider.token_requests[-1]["code_verifier"]

        page = await client.get(f"{world.signoff}/requests/{rid}")
        assert page.status_code == 200
        assert "Olga &lt;Ops&gt;" in page.text and "<Ops>" not in page.text
        vote = await client.post(
            f"{world.signoff}/requests/{rid}/vote",
            data={"csrf": csrf(page.text), "verdict": "approve", "rationale": ""},
        )
        assert vote.status_code == 303, vote.text

    item = await world.services.engine.get(rid)
    assert item.status is Status.APPROVED
    assert [(v.reviewer, v.name, v.channel) for v in item.votes] == [(OLGA, "Olga <Ops>", "web")]
    [session] = await world.services.repo.web_sessions(world.services.clock.now())
    assert (session.login, session.method) == ("olga@example.com", "oidc")


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        (Tamper(issuer="https://evil.example"), "iss claim is wrong"),
        (Tamper(audience="another-client"), "aud claim is wrong"),
        (Tamper(audience=[CLIENT_ID, "another-client"]), "azp claim is wrong"),
        (Tamper(issued_ago=timedelta(minutes=10)), "the ID token has expired"),
        (Tamper(foreign_key=True), "signature does not verify"),
        (Tamper(nonce="not-the-nonce-of-this-sign-in"), "nonce claim is wrong"),
    ],
    ids=["wrong-issuer", "wrong-audience", "foreign-azp", "expired", "bad-signature", "nonce"],
)
async def test_id_tokens_that_do_not_check_out_are_refused(
    world: World, tamper: Tamper, reason: str
) -> None:
    world.provider.tamper = tamper
    async with browser() as client:
        callback = await through_the_provider(client, world)

        assert callback.status_code == 401
        assert "Sign-in failed" in callback.text and reason in callback.text
        assert not await signed_in(client, world)
    assert await world.services.repo.web_sessions(world.services.clock.now()) == []


async def test_a_replayed_code_is_refused(world: World) -> None:
    async with browser() as client:
        start = await client.get(f"{world.signoff}/login/oidc", params={"next": "/"})
        authorize = await client.get(start.headers["location"])
        callback_url = authorize.headers["location"]
        pending = client.cookies.get(PENDING_COOKIE)
        assert pending is not None
        first = await client.get(callback_url)
        assert first.status_code == 303 and await signed_in(client, world)

    # Someone who saw the callback URL and the pending cookie tries them again.
    async with browser() as thief:
        thief.cookies.set(PENDING_COOKIE, pending, domain="127.0.0.1", path=CALLBACK_PATH)
        again = await thief.get(callback_url)

        assert again.status_code == 401 and "invalid_grant" in again.text
        assert not await signed_in(thief, world)
    assert len(await world.services.repo.web_sessions(world.services.clock.now())) == 1


async def test_a_callback_that_this_browser_did_not_start_is_refused(world: World) -> None:
    async with browser() as victim:
        start = await victim.get(f"{world.signoff}/login/oidc", params={"next": "/"})
        authorize = await victim.get(start.headers["location"])
        callback_url = authorize.headers["location"]
        # Another state than the one this browser was given (login CSRF).
        forged = re.sub(r"state=[^&]+", "state=forged", callback_url)
        assert (await victim.get(forged)).status_code == 400
        assert not await signed_in(victim, world)
    # Without the pending cookie at all.
    async with browser() as stranger:
        refused = await stranger.get(callback_url)
        assert refused.status_code == 400 and "not started here" in refused.text
        assert not await signed_in(stranger, world)


async def test_the_provider_saying_no_and_unverified_emails_are_refused(world: World) -> None:
    async with browser() as client:
        start = await client.get(f"{world.signoff}/login/oidc", params={"next": "/"})
        state = parse_qs(urlsplit(start.headers["location"]).query)["state"][0]
        denied = await client.get(
            f"{world.signoff}{CALLBACK_PATH}", params={"error": "access_denied", "state": state}
        )
        assert denied.status_code == 401 and "access_denied" in denied.text

    world.provider.user = {**world.provider.user, "email_verified": False}
    async with browser() as client:
        callback = await through_the_provider(client, world)
        assert callback.status_code == 401 and "not verified" in callback.text
        assert not await signed_in(client, world)


async def test_sign_out_ends_an_oidc_session(world: World) -> None:
    async with browser() as client:
        assert (await through_the_provider(client, world)).status_code == 303
        home = await client.get(f"{world.signoff}/")
        out = await client.post(f"{world.signoff}/logout", data={"csrf": csrf(home.text)})
        assert out.status_code == 303
        assert not await signed_in(client, world)
