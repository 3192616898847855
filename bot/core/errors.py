"""The one exception family of Signoff; the HTTP layer maps each branch to a response."""

from __future__ import annotations


class SignoffError(Exception):
    """Base of every error Signoff raises on purpose."""


class ConfigError(SignoffError):
    """The configuration is invalid; `path` names the key (e.g. ``tiers[1].sla``)."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}" if path else problem)
        self.path = path
        self.problem = problem


class StorageError(SignoffError):
    """The database could not be reached or refused the operation."""


class VersionConflict(StorageError):
    """Another writer changed the request first; re-read and decide again."""


class IdempotencyRace(StorageError):
    """Another submit with the same Idempotency-Key committed first."""


class StandingExhausted(StorageError):
    """The standing approval a change used is revoked, expired or used up by now."""


class NotFound(SignoffError):
    """The request (or delivery) does not exist for this caller."""


class Conflict(SignoffError):
    """The operation does not fit the current state (e.g. cancel of a decided item)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class NotAllowed(SignoffError):
    """A reviewer may not do this; `code` is stable, `message` is for the person."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class InvalidInput(SignoffError):
    """The caller sent something well-formed but unacceptable (bad callback URL, ...)."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class DeliveryError(SignoffError):
    """A channel or resume target failed; `retryable` says whether trying again can help."""

    def __init__(
        self, message: str, *, retryable: bool = True, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after


class RateLimited(DeliveryError):
    """The platform throttled the call (HTTP 429): nothing is wrong with it or with the
    receiver, it must only wait `retry_after` seconds. The outbox sends it again then
    without counting the attempt, so a long burst can never make a card dead."""

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message, retryable=True, retry_after=retry_after)
