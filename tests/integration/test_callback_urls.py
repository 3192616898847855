"""Callback URLs are parsed and compared part by part with the agent's prefixes.

Each bypass the string comparison let through (issue 15) is refused at submit with 422
`invalid_callback_url` and stores nothing; prefixes are checked when the config loads.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from bot.core.errors import ConfigError
from bot.server.app import build_services, create_app
from bot.server.config import LoadedConfig, parse_config
from tests.conftest import RepoFactory
from tests.support.world import TIERS

KEY = "sk_test_callback_bot"
PREFIX = "http://127.0.0.1:8206"


def config(prefixes: list[str]) -> LoadedConfig:
    return parse_config(
        {
            "agents": [
                {
                    "id": "callback-bot",
                    "key_sha256": hashlib.sha256(KEY.encode()).hexdigest(),
                    "callback_prefixes": prefixes,
                    "webhook_secret_env": "CALLBACK_BOT_SECRET",
                }
            ],
            "tiers": TIERS,
        },
        env={},
    )


BODY: dict[str, Any] = {
    "action": {"kind": "refund", "summary": "Refund order 7"},
    "confidence": 0.3,
}


@pytest.fixture
async def client(repo_factory: RepoFactory) -> AsyncIterator[httpx.AsyncClient]:
    loaded = config([PREFIX, "https://hooks.example.com/agents/callback-bot"])
    svc = await build_services(loaded, repo=await repo_factory(), start_scheduler=False)
    async with svc.stack:
        app = create_app(svc.config, services=svc)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://signoff",
            headers={"Authorization": f"Bearer {KEY}"},
        ) as c:
            yield c


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://127.0.0.1:8206@127.0.0.1:8207/hook", "userinfo"),
        ("http://user@127.0.0.1:8206/hook", "userinfo"),
        ("http://127.0.0.1:8206.evil.com/hook", "invalid port"),
        ("http://127.0.0.1:82067/hook", "invalid port"),
        ("http://127.0.0.1:0/hook", "invalid port"),
        ("http://127.0.0.1:8206/ho\rok", "control character"),
        ("http://127.0.0.1:8206/ho\nok", "control character"),
        ("http://127.0.0.1:8206/ho\tok", "control character"),
        ("http://127.0.0.1:8206/hook#part", "fragment"),
        ("http://127.0.0.1:8207/hook", "outside"),
        ("https://127.0.0.1:8206/hook", "outside"),
        ("http://127.0.0.1/hook", "outside"),
        ("https://hooks.example.com/agents/callback-bot-evil/x", "outside"),
        ("https://hooks.example.com/agents/callback-bot/../other", "segments"),
        ("https://hooks.example.com/agents/callback-bot/%2e%2e/other", "segments"),
        ("https://hooks.example.com:8443/agents/callback-bot/x", "outside"),
        ("ftp://127.0.0.1:8206/hook", "http(s)"),
        ("http:///hook", "no host"),
    ],
)
async def test_bypasses_are_422_invalid_callback_url(
    client: httpx.AsyncClient, url: str, why: str
) -> None:
    response = await client.post("/v1/requests", json={**BODY, "callback_url": url})
    assert response.status_code == 422, url
    body = response.json()
    assert body["error"] == "invalid_callback_url"
    assert why in str(body["detail"])
    assert (await client.get("/v1/requests")).json()["items"] == []


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8206/hook",
        "http://127.0.0.1:8206",
        "HTTP://127.0.0.1:8206/a/b?x=1",
        "https://hooks.example.com/agents/callback-bot",
        "https://hooks.example.com:443/agents/callback-bot/run/7",
        "https://HOOKS.example.com/agents/callback-bot/",
    ],
)
async def test_urls_under_a_prefix_are_accepted(client: httpx.AsyncClient, url: str) -> None:
    response = await client.post("/v1/requests", json={**BODY, "callback_url": url})
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    ("prefix", "problem"),
    [
        ("127.0.0.1:8206", "not an http(s) URL"),
        ("http://", "no host"),
        ("http://u:p@127.0.0.1:8206/", "userinfo"),
        ("http://127.0.0.1:99999/", "invalid port"),
        ("http://127.0.0.1:8206/a\nb", "control character"),
    ],
)
def test_a_prefix_that_is_not_a_url_with_a_host_is_a_config_error(
    prefix: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        config([PREFIX, prefix])
    assert caught.value.path == "agents[0].callback_prefixes[1]"
    assert problem in caught.value.problem


def test_a_prefix_without_a_path_covers_the_whole_origin() -> None:
    from bot.core.callbacks import check_callback_url

    check_callback_url("http://127.0.0.1:8206/any/path", [PREFIX])
    with pytest.raises(ValueError, match="outside"):
        check_callback_url("http://127.0.0.1:8206/any", ["http://127.0.0.1:8206/an"])
