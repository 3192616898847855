"""Resume an agent by POSTing the decided request to its URL as a Standard Webhook."""

from __future__ import annotations

import binascii
import json
import re
import time
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx
from standardwebhooks import Webhook
from standardwebhooks.webhooks import EmptyWebhookSecretError

from adapters.resume._http import HttpTarget
from bot.core.errors import DeliveryError
from bot.core.ports import DeliveryAttempt, WebhookDelivery

NO_SECRET = "no webhook secret configured for this agent"
BAD_SECRET = "the agent's webhook secret is not a valid whsec_ key (base64)"

# RFC 9110 delta-seconds is digits only; a sign and a fraction are accepted so that a sloppy
# "-1" or "1.5" still means something, while "inf"/"nan"/"1e9" (which float() takes) do not.
_DELTA_SECONDS = re.compile(r"[+-]?\d+(?:\.\d+)?")


class WebhookResumeTarget(HttpTarget):
    """Delivers `WebhookDelivery`s as signed POSTs (CONTRACT section 7).

    Each call is one attempt; the caller owns retries (see `bot.core.retry`). The `webhook-id` is
    the delivery id, so an agent can drop a retry it already processed. Redirects are not
    followed: a signed body must reach the URL the agent registered, and a 3xx usually means
    the agent's URL is stale, which an operator should see rather than have papered over.
    """

    def __init__(
        self,
        client: httpx.AsyncClient | None = None,
        *,
        timeout: float = 10.0,
        user_agent: str = "Signoff-Webhooks/1",
    ) -> None:
        """`client` is borrowed (never closed here); without one, an own client is made lazily.

        `timeout` applies to every attempt, also on a borrowed client.
        """
        super().__init__(client, timeout)
        self._user_agent = user_agent

    async def deliver(self, delivery: WebhookDelivery) -> DeliveryAttempt:
        """POST `delivery.body` once, signed with the agent's secret.

        Never raises for HTTP or network failures; they come back as a not-ok attempt.
        Without a secret nothing is sent. Raises DeliveryError (not retryable) only when the
        body cannot be serialized as JSON, which is a bug upstream rather than the agent's.
        """
        if not delivery.secret:
            return DeliveryAttempt(ok=False, error=NO_SECRET)
        try:
            payload = json.dumps(delivery.body, separators=(",", ":"), ensure_ascii=False)
        except (TypeError, ValueError) as exc:
            raise DeliveryError(
                f"webhook body of delivery {delivery.id} is not JSON-serializable",
                retryable=False,
            ) from exc
        sent_at = int(time.time())
        try:
            signature = Webhook(delivery.secret).sign(
                delivery.id, datetime.fromtimestamp(sent_at, UTC), payload
            )
        # The library's own error text is fine, but ours is certain not to echo the key.
        except (binascii.Error, EmptyWebhookSecretError):
            return DeliveryAttempt(ok=False, error=BAD_SECRET)
        headers = {
            "webhook-id": delivery.id,
            "webhook-timestamp": str(sent_at),
            "webhook-signature": signature,
            "content-type": "application/json",
            "user-agent": self._user_agent,
        }
        try:
            # Streamed and left unread: only the status line and headers matter, and an
            # agent's response body (possibly huge or slow) is not ours to download.
            async with self._http().stream(
                "POST",
                delivery.url,
                content=payload.encode(),
                headers=headers,
                timeout=self._timeout,
                follow_redirects=False,
            ) as response:
                status = response.status_code
                retry_after_header = response.headers.get("retry-after")
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            return DeliveryAttempt(ok=False, error=_describe(exc))
        return _outcome(status, retry_after_header)


def _outcome(status: int, retry_after_header: str | None) -> DeliveryAttempt:
    if 200 <= status < 300:
        return DeliveryAttempt(ok=True, status_code=status)
    if status == 410:
        return DeliveryAttempt(
            ok=False, status_code=status, gone=True, error="HTTP 410: the agent retired this URL"
        )
    error = f"HTTP {status}"
    if 300 <= status < 400:
        error += " (redirects are not followed; register the final URL)"
    return DeliveryAttempt(
        ok=False,
        status_code=status,
        retry_after=parse_retry_after(retry_after_header),
        error=error,
    )


def _describe(exc: Exception) -> str:
    # httpx timeouts often carry an empty message; the class name alone is then the story.
    message = str(exc)
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or HTTP-date).

    None when absent or unparseable; a negative delay or a past date gives 0. `now` (aware)
    defaults to the current time and only matters for the HTTP-date form.
    """
    if value is None:
        return None
    value = value.strip()
    if _DELTA_SECONDS.fullmatch(value):
        return max(float(value), 0.0)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    # A date with "-0000" comes back naive; HTTP dates are always GMT.
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return max(seconds, 0.0)
