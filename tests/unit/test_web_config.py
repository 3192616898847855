"""The `web.oidc` and `web.session_ttl` settings: defaults, and errors that name the key."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from bot.core.errors import ConfigError
from bot.server.config import parse_config
from bot.server.web import oidc_settings

ISSUER = "https://login.example.com/tenant/v2.0"


def web(section: dict[str, Any], env: dict[str, str] | None = None) -> Any:
    return parse_config({"web": section}, env=env or {})


def test_defaults() -> None:
    settings = web({"oidc": {"issuer": ISSUER, "client_id": "signoff"}}).settings
    assert settings.web.session_ttl == timedelta(hours=12)
    oidc = settings.web.oidc
    assert oidc is not None
    assert (oidc.scopes, oidc.identity_claim, oidc.client_secret_env) == (
        ["openid", "email", "profile"],
        "email",
        None,
    )
    assert parse_config({}, env={}).settings.web.oidc is None


def test_the_wiring_reads_the_secret_and_points_the_provider_back_here() -> None:
    loaded = parse_config(
        {
            "public_url": "https://signoff.example.com/",
            "web": {
                "oidc": {
                    "issuer": ISSUER,
                    "client_id": "signoff",
                    "client_secret_env": "OIDC_SECRET",
                    "scopes": ["openid", "email"],
                    "identity_claim": "preferred_username",
                }
            },
        },
        env={"OIDC_SECRET": "s3cret"},
    )
    settings = oidc_settings(loaded.settings, {"OIDC_SECRET": "s3cret"})
    assert settings is not None
    assert settings.client_secret == "s3cret"
    assert settings.redirect_uri == "https://signoff.example.com/login/oidc/callback"
    assert (tuple(settings.scopes), settings.identity_claim) == (
        ("openid", "email"),
        "preferred_username",
    )


@pytest.mark.parametrize(
    ("section", "path", "problem"),
    [
        (
            {"oidc": {"issuer": ISSUER, "client_id": "c", "client_secret_env": "NOT_SET_HERE"}},
            "web.oidc.client_secret_env",
            "NOT_SET_HERE is not set",
        ),
        (
            {"oidc": {"issuer": "http://login.example.com", "client_id": "c"}},
            "web.oidc.issuer",
            "https",
        ),
        (
            {"oidc": {"issuer": "https://x.example?a=1", "client_id": "c"}},
            "web.oidc.issuer",
            "query",
        ),
        ({"oidc": {"issuer": ISSUER}}, "web.oidc.client_id", "Field required"),
        (
            {"oidc": {"issuer": ISSUER, "client_id": "c", "scopes": ["email"]}},
            "web.oidc.scopes",
            "openid",
        ),
        (
            {"oidc": {"issuer": ISSUER, "client_id": "c", "client_secret_env": "no spaces"}},
            "web.oidc.client_secret_env",
            "not an environment variable name",
        ),
        (
            {"oidc": {"issuer": ISSUER, "client_id": "c", "surprise": 1}},
            "web.oidc.surprise",
            "unknown key",
        ),
        ({"session_ttl": "12x"}, "web.session_ttl", ""),
        ({"session_ttl": "10s"}, "web.session_ttl", "between 1m and 30d"),
        ({"session_ttl": "90d"}, "web.session_ttl", "between 1m and 30d"),
    ],
)
def test_errors_name_the_key(section: dict[str, Any], path: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        web(section)
    assert caught.value.path == path
    assert problem in caught.value.problem


def test_plain_http_issuers_only_on_this_machine() -> None:
    loaded = web({"oidc": {"issuer": "http://127.0.0.1:8080", "client_id": "c"}})
    assert loaded.settings.web.oidc is not None
