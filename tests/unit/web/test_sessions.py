"""Signed session cookies and one-time sign-in links (the lock-out and the stored sessions:
tests/contract)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest

from adapters.web.sessions import (
    _COOKIE_CONTEXT,
    Session,
    SessionCodec,
    SignedJson,
    token_digest,
)

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def signed_in() -> Session:
    return Session.anonymous(NOW, HOUR).signed_in("alice", "fp", NOW, HOUR)


def test_a_session_round_trips() -> None:
    codec = SessionCodec(b"k" * 32)
    session = signed_in()
    assert codec.decode(codec.encode(session), NOW) == session


def test_signing_in_changes_the_id_and_the_csrf_token() -> None:
    before = Session.anonymous(NOW, HOUR)
    after = before.signed_in("alice", "fp", NOW, HOUR)
    assert after.sid != before.sid and after.csrf != before.csrf
    assert after.login == "alice" and after.fingerprint == "fp"


def test_tampered_payload_or_signature_reads_as_no_session() -> None:
    codec = SessionCodec(b"k" * 32)
    value = codec.encode(signed_in())
    payload, signature = value.split(".")
    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    data["login"] = "mallory"
    forged = base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()
    assert codec.decode(f"{forged}.{signature}", NOW) is None
    assert codec.decode(f"{payload}.{signature[:-2]}xx", NOW) is None
    assert codec.decode(value + ".extra", NOW) is None
    assert codec.decode("garbage", NOW) is None
    assert codec.decode("", NOW) is None
    assert codec.decode("ü.ü", NOW) is None
    assert SessionCodec(b"other-secret-1234").decode(value, NOW) is None


def test_a_well_signed_but_malformed_payload_is_refused() -> None:
    codec = SessionCodec(b"k" * 32)
    sealed = SignedJson(b"k" * 32, _COOKIE_CONTEXT)
    assert codec.decode(sealed.seal({"sid": 1}), NOW) is None
    # Well signed, but JSON that is not an object; and a payload altered after signing.
    assert sealed.open(sealed.seal([1, 2])) is None  # type: ignore[arg-type]
    assert sealed.open(sealed.seal({"a": 1}).replace(".", "x.", 1)) is None


def test_expired_sessions_are_refused() -> None:
    codec = SessionCodec(b"k" * 32)
    value = codec.encode(signed_in())
    assert codec.decode(value, NOW + HOUR - timedelta(seconds=1)) is not None
    assert codec.decode(value, NOW + HOUR) is None


def test_short_secrets_are_refused() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        SessionCodec(b"short")


def test_csrf_check() -> None:
    session = signed_in()
    assert session.check_csrf(session.csrf)
    assert not session.check_csrf(None)
    assert not session.check_csrf("")
    assert not session.check_csrf(session.csrf + "x")


def test_only_the_digest_of_a_session_secret_is_stored() -> None:
    session = signed_in()
    digest = token_digest(session.sid)
    assert len(digest) == 64 and session.sid not in digest
    assert digest == token_digest(session.sid) != token_digest(signed_in().sid)
