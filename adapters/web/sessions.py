"""Web inbox sessions: signed cookies, login lock-out and one-time login links.

The cookie is HMAC-SHA256 signed and carries the CSRF token and, once signed in, the
session's secret id; the session itself is a database row (bot.core.domain.WebSession) looked
up by that secret's SHA-256, so a sign-out or a revocation holds on every replica and after a
restart. Lock-out counters and one-time login tokens live in the database too.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from bot.core.ports import Repository

_COOKIE_CONTEXT = b"signoff.web.session.v1"
# How long a one-time sign-in link stays usable.
LOGIN_LINK_TTL = timedelta(hours=24)


def token_digest(secret: str) -> str:
    """How a session's secret id is stored: its SHA-256, so stored rows open no session."""
    return hashlib.sha256(secret.encode("utf-8", "replace")).hexdigest()


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Session:
    """One browser's session. `login` is None until someone signs in (CSRF still applies)."""

    sid: str
    csrf: str
    expires: int
    login: str | None = None
    fingerprint: str = ""

    @classmethod
    def anonymous(cls, now: datetime, max_age: timedelta) -> Session:
        return cls(
            sid=secrets.token_urlsafe(16),
            csrf=secrets.token_urlsafe(32),
            expires=int((now + max_age).timestamp()),
        )

    def signed_in(self, login: str, fingerprint: str, now: datetime, max_age: timedelta) -> Session:
        """A fresh id and CSRF token at sign-in, so a planted pre-login cookie is worthless."""
        return replace(Session.anonymous(now, max_age), login=login, fingerprint=fingerprint)

    def check_csrf(self, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(self.csrf.encode(), (token or "").encode())


class SignedJson:
    """A small JSON object sealed into a cookie value (`payload.signature`, HMAC-SHA256 under
    a key derived from the secret and `context`), and read back: None when altered or
    malformed. Web sessions and pending OpenID Connect sign-ins both travel this way."""

    def __init__(self, secret: bytes, context: bytes) -> None:
        self._key = hmac.new(secret, context, hashlib.sha256).digest()

    def _sign(self, payload: str) -> str:
        return _b64encode(hmac.new(self._key, payload.encode("ascii"), hashlib.sha256).digest())

    def seal(self, data: dict[str, object]) -> str:
        payload = _b64encode(json.dumps(data, separators=(",", ":")).encode("utf-8"))
        return f"{payload}.{self._sign(payload)}"

    def open(self, value: str | None) -> dict[str, Any] | None:
        if not value or value.count(".") != 1:
            return None
        payload, signature = value.split(".")
        try:
            expected = self._sign(payload)
        except UnicodeEncodeError:
            return None
        if not hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace")):
            return None
        try:
            data = json.loads(_b64decode(payload))
        except (ValueError, binascii.Error):
            return None
        return data if isinstance(data, dict) else None


class SessionCodec:
    """Turns sessions into cookie values and back; anything altered or expired reads as None."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("the session secret must be at least 16 bytes")
        self._sealed = SignedJson(secret, _COOKIE_CONTEXT)

    def encode(self, session: Session) -> str:
        return self._sealed.seal(
            {
                "sid": session.sid,
                "csrf": session.csrf,
                "exp": session.expires,
                "login": session.login,
                "fp": session.fingerprint,
            }
        )

    def decode(self, value: str | None, now: datetime) -> Session | None:
        data = self._sealed.open(value)
        if data is None:
            return None
        try:
            session = Session(
                sid=str(data["sid"]),
                csrf=str(data["csrf"]),
                expires=int(data["exp"]),
                login=None if data["login"] is None else str(data["login"]),
                fingerprint=str(data["fp"]),
            )
        except (ValueError, KeyError, TypeError):
            return None
        if session.expires <= now.timestamp():
            return None
        return session


class LoginGuard:
    """Locks a login name from one client address for `lockout` after `max_failures`
    failures from that address within `lockout`.

    Counting per (name, address) keeps a stranger from locking a reviewer out: their
    failures lock only their own address, and the right password from anywhere else still
    works. The counts live in the database, so a lock holds on every replica and across
    restarts. Unknown names are counted like known ones, so the answers do not reveal which
    names exist.
    """

    def __init__(
        self,
        repo: Repository,
        max_failures: int = 5,
        lockout: timedelta = timedelta(minutes=15),
    ) -> None:
        self.repo = repo
        self.max_failures = max_failures
        self.lockout = lockout

    @staticmethod
    def _key(login: str) -> str:
        return login.strip().casefold()

    async def locked_until(self, login: str, address: str, now: datetime) -> datetime | None:
        return (await self.repo.login_failures(self._key(login), address)).lock_at(now)

    async def failed(self, login: str, address: str, now: datetime) -> datetime | None:
        """Count a failure; returns the lock's end if this failure locks the name there."""
        state = await self.repo.record_login_failure(
            self._key(login), address, now, max_failures=self.max_failures, window=self.lockout
        )
        return state.lock_at(now)

    async def succeeded(self, login: str, address: str) -> None:
        await self.repo.forget_login_failures(self._key(login), address)


class LoginTokens:
    """Single-use sign-in links. Only the token's SHA-256 is kept, in the database, until
    used or expired, so a link issued by `signoff web login-link` (another process) or by
    another replica signs in here too."""

    def __init__(self, repo: Repository, ttl: timedelta = LOGIN_LINK_TTL) -> None:
        self.repo = repo
        self.ttl = ttl

    @staticmethod
    def _digest(token: str) -> str:
        return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()

    async def issue(self, login: str, now: datetime) -> str:
        token = secrets.token_urlsafe(32)
        await self.repo.add_login_token(self._digest(token), login, now + self.ttl, now)
        return token

    async def peek(self, token: str, now: datetime) -> str | None:
        """The login a valid token signs in as, without using it up."""
        return await self.repo.peek_login_token(self._digest(token), now)

    async def redeem(self, token: str, now: datetime) -> str | None:
        """Use the token up; returns its login, or None if it was used, expired or never issued."""
        return await self.repo.redeem_login_token(self._digest(token), now)
