"""The errors the agent SDK raises for the server's answers and for a resume webhook."""

from __future__ import annotations

from typing import Any

from signoff_client.errors import SignoffError


class SignoffAPIError(SignoffError):
    """Signoff answered with an error. `error` and `detail` are the server's JSON body
    (`{"error": code, "detail": ...}`; a 422's `detail` is the list of field problems)."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        error: str | None = None,
        detail: Any = None,
        body: Any = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.error = error
        self.detail = detail
        self.body = body


class AuthenticationError(SignoffAPIError):
    """401: the API key is missing, unknown or revoked."""


class RequestNotFound(SignoffAPIError):
    """404: no such request for this agent."""


class ConflictError(SignoffAPIError):
    """409: an Idempotency-Key reused with another body, or a cancel of a decided request."""


class InvalidRequest(SignoffAPIError):
    """422 (invalid body, callback URL outside the agent's prefixes) or 413 (body too big)."""


class ServiceUnavailable(SignoffAPIError):
    """503, or no connection, after every retry. `status_code` is None for transport errors."""


class WebhookVerificationError(SignoffError):
    """A resume webhook failed verification (signature, timestamp, or the action's hash)."""


ERRORS_BY_STATUS: dict[int, type[SignoffAPIError]] = {
    401: AuthenticationError,
    404: RequestNotFound,
    409: ConflictError,
    413: InvalidRequest,
    422: InvalidRequest,
    503: ServiceUnavailable,
}
