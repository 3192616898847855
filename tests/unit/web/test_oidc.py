"""The pieces of OIDC sign-in that need no provider: the pending cookie, PKCE, identities.
(The flow against a provider: tests/integration/test_web_oidc.py.)"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from adapters.web.oidc import (
    OidcError,
    OidcSettings,
    PendingCodec,
    PendingLogin,
    _identity,
)

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
TEN_MINUTES = timedelta(minutes=10)


def test_the_pkce_challenge_is_s256_of_the_verifier() -> None:
    # RFC 7636, appendix B.
    pending = PendingLogin("s", "n", "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk", "/", 0)
    assert pending.challenge == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_each_sign_in_gets_fresh_secrets() -> None:
    one, two = (PendingLogin.new("/", NOW, TEN_MINUTES) for _ in range(2))
    assert {one.state, one.nonce, one.verifier}.isdisjoint({two.state, two.nonce, two.verifier})
    assert 43 <= len(one.verifier) <= 128  # RFC 7636 section 4.1


def test_the_pending_cookie_round_trips_and_refuses_tampering_and_age() -> None:
    codec = PendingCodec(b"k" * 32)
    pending = PendingLogin.new("/requests/req_1", NOW, TEN_MINUTES)
    value = codec.encode(pending)

    assert codec.decode(value, NOW) == pending
    assert codec.decode(value, NOW + TEN_MINUTES) is None
    payload, signature = value.split(".")
    assert codec.decode(f"{payload}x.{signature}", NOW) is None
    assert codec.decode(value, NOW) != codec.decode(
        codec.encode(PendingLogin.new("/", NOW, TEN_MINUTES)), NOW
    )
    assert PendingCodec(b"other-secret-123").decode(value, NOW) is None
    for junk in (None, "", "a.b.c", "ü.ü"):
        assert codec.decode(junk, NOW) is None


def test_the_identity_is_the_configured_claim() -> None:
    claims = {"email": " Olga@Example.COM ", "name": "Olga", "preferred_username": "olga"}
    assert _identity(claims, "email").value == "olga@example.com"
    assert _identity(claims, "email").name == "Olga"
    other = _identity(claims, "preferred_username")
    assert (other.value, other.name) == ("olga", "Olga")
    assert _identity({"email": "a@b.c"}, "email").name == "a@b.c"


@pytest.mark.parametrize(
    ("claims", "problem"),
    [
        ({"sub": "x"}, "no email claim"),
        ({"email": ""}, "no email claim"),
        ({"email": 7}, "no email claim"),
        ({"email": "a@b.c", "email_verified": False}, "not verified"),
        ({"email": "a\nb@c.d"}, "not a usable name"),
        ({"email": "x" * 201}, "not a usable name"),
    ],
)
def test_unusable_identities_are_refused(claims: dict[str, object], problem: str) -> None:
    with pytest.raises(OidcError, match=problem):
        _identity(claims, "email")


def test_the_client_secret_stays_out_of_reprs() -> None:
    settings = OidcSettings(
        issuer="https://id.example.com/",
        client_id="c",
        redirect_uri="https://signoff.example.com/login/oidc/callback",
        client_secret="hunter2-secret",
    )
    assert "hunter2" not in repr(settings)
    assert settings.label == "id.example.com"
    other = OidcSettings(issuer="https://id.example.com/", client_id="d", redirect_uri="x")
    assert settings.fingerprint != other.fingerprint
