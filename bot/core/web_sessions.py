"""Web inbox sign-in state: failed sign-ins of a login name and the sessions it opened."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.core.clock import as_utc


@dataclass(frozen=True)
class LoginFailures:
    """Recent failed sign-ins of one login name, and the lock they caused (if any)."""

    recent: tuple[datetime, ...] = ()
    locked_until: datetime | None = None

    def lock_at(self, now: datetime) -> datetime | None:
        """The end of the lock in force at `now`, if any."""
        return self.locked_until if self.locked_until and self.locked_until > now else None

    def after_failure(self, now: datetime, max_failures: int, window: timedelta) -> LoginFailures:
        """Count one more failure: `max_failures` within `window` lock the name for `window`.
        A lock that has ended starts the count again; one in force stays as it is."""
        if self.lock_at(now) is not None:
            return self
        if self.locked_until is not None:
            recent: tuple[datetime, ...] = ()
        else:
            recent = tuple(t for t in self.recent if now - t < window)
        recent = (*recent, now)
        if len(recent) >= max_failures:
            return LoginFailures((), now + window)
        return LoginFailures(recent, None)


@dataclass(frozen=True)
class WebSession:
    """A signed-in web inbox session, kept in the database so that a sign-out or a revocation
    holds on every replica and after a restart.

    `id` is the public handle shown on the dashboard; the browser holds a different secret
    whose SHA-256 is `token_sha256`, so the stored rows alone open no session. `method` is
    how the reviewer signed in (password, link or oidc) and `fingerprint` binds the session
    to the credentials of that method, so a changed password ends it.
    """

    id: str
    token_sha256: str
    login: str
    name: str
    method: str
    fingerprint: str
    address: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None
    revoked_by: str | None = None

    def active(self, now: datetime) -> bool:
        return self.revoked_at is None and as_utc(self.expires_at) > now
