"""`SlackChannel`: posts, edits and nudges approval cards through the Slack Web API."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from adapters.slack import batch_cards, cards, queue_cards
from adapters.slack.pacer import EDITS, ChannelPacer
from bot.core.domain import Alert, ApprovalRequest
from bot.core.errors import DeliveryError, RateLimited
from bot.core.views import BatchView, CardView, QueueView

log = logging.getLogger("signoff.slack")

# Errors where trying the same call again cannot help: the message itself is wrong, or the
# card it would edit is gone. Everything else (network, 5xx, rate limits, a bot not yet
# invited, a revoked token being replaced) is retried by the outbox, so no card is lost
# while someone fixes the workspace.
_PERMANENT = frozenset(
    {
        "invalid_blocks",
        "invalid_blocks_format",
        "invalid_arguments",
        "invalid_arg_name",
        "invalid_array_arg",
        "invalid_charset",
        "invalid_form_data",
        "invalid_json",
        "json_not_object",
        "msg_too_long",
        "no_text",
        "too_many_attachments",
        "message_not_found",
        "cant_update_message",
        "edit_window_closed",
        "unknown_method",
    }
)


def slack_client(token: str, api_url: str, *, timeout: int = 10) -> AsyncWebClient:
    """An AsyncWebClient for `api_url` (``https://slack.com/api/``, or a fake in tests)."""
    return AsyncWebClient(token=token, base_url=api_url, timeout=timeout)


def retry_after(response: Any) -> float:
    """Seconds from a Slack response's Retry-After header (1 s if absent or unreadable)."""
    headers = getattr(response, "headers", None) or {}
    for name, value in headers.items():
        if name.lower() == "retry-after":
            raw = value[0] if isinstance(value, list | tuple) else value
            try:
                return max(float(raw), 0.0)
            except (TypeError, ValueError):
                break
    return 1.0


class SlackChannel:
    """Implements `bot.core.ports.Channel` for Slack.

    Cards go to the tier's channel with an @-mention of its Slack reviewers; edits use
    `chat.update`; reminders are thread replies. Every write goes through a `ChannelPacer`
    on the key Slack counts it against: the channel for messages (about one per second),
    the workspace for edits (Tier 3); a 429 holds that key for its Retry-After. Every method
    raises DeliveryError: retryable for rate limits (with `retry_after`), network errors and
    workspace problems; not retryable when the message is malformed or the card is gone.

    `on_change(request)` hears of every card posted or edited (`SlackApp.card_changed`
    redraws the App Homes showing it).
    """

    name = "slack"

    def __init__(
        self,
        client: AsyncWebClient,
        *,
        alerts_channel: str | None = None,
        pacer: ChannelPacer | None = None,
        dashboard_url: str | None = None,
    ) -> None:
        self.client = client
        self.alerts_channel = alerts_channel
        self.dashboard_url = dashboard_url
        self.pacer = pacer or ChannelPacer()
        self.on_change: Callable[[ApprovalRequest], None] | None = None

    async def post_card(self, view: CardView) -> Mapping[str, Any]:
        ref = await self._post(view.target, cards.card_message(view, ping=True))
        self._changed(view.request)
        return ref

    async def update_card(self, ref: Mapping[str, Any], view: CardView) -> None:
        await self._update(ref, cards.card_message(view))
        self._changed(view.request)

    def _changed(self, request: ApprovalRequest) -> None:
        if self.on_change is None:
            return
        try:
            self.on_change(request)
        except Exception:  # the card is delivered; a home view is not worth a retry
            log.exception("Slack card change listener failed")

    async def post_batch(self, view: BatchView) -> Mapping[str, Any]:
        """Post a batch card to its channel (no @-mentions: each item's card pinged already)."""
        return await self._post(view.batch.target, batch_cards.batch_message(view))

    async def update_batch(self, ref: Mapping[str, Any], view: BatchView) -> None:
        await self._update(ref, batch_cards.batch_message(view))

    async def post_queue(self, view: QueueView) -> Mapping[str, Any]:
        """Post a tier's queue card (implements `bot.core.ports.QueueChannel`)."""
        return await self._post(view.card.target, queue_cards.queue_message(view))

    async def update_queue(self, ref: Mapping[str, Any], view: QueueView) -> None:
        await self._update(ref, queue_cards.queue_message(view))

    async def _post(self, target: str, message: cards.SlackMessage) -> Mapping[str, Any]:
        # A direct message (`dm:U…`, tiers[].notify) is posted to the user's id: Slack opens
        # the app's conversation with them and answers with its D… id, which edits then use.
        address = target.removeprefix("dm:")
        response = await self._write(
            "chat.postMessage",
            address,
            lambda: self.client.chat_postMessage(
                channel=address,
                text=message.text,
                blocks=message.blocks,
                unfurl_links=False,
                unfurl_media=False,
            ),
        )
        return {
            "channel": str(response.get("channel") or address),
            "ts": str(response["ts"]),
            "target": target,
        }

    async def _update(self, ref: Mapping[str, Any], message: cards.SlackMessage) -> None:
        channel, ts = str(ref["channel"]), str(ref["ts"])
        await self._write(
            "chat.update",
            channel,
            lambda: self.client.chat_update(
                channel=channel, ts=ts, text=message.text, blocks=message.blocks
            ),
        )

    async def remind(self, ref: Mapping[str, Any], view: CardView) -> None:
        channel, ts = str(ref["channel"]), str(ref["ts"])
        text = cards.reminder_text(view)
        await self._write(
            "chat.postMessage",
            channel,
            lambda: self.client.chat_postMessage(channel=channel, thread_ts=ts, text=text),
        )

    async def post_alert(self, alert: Alert) -> None:
        """Announce a warning sign in `alerts_channel` (implements `bot.core.ports.AlertSink`).

        Raises DeliveryError like the card methods; not retryable without a channel.
        """
        if not self.alerts_channel:
            raise DeliveryError("slack.alerts_channel is not configured", retryable=False)
        channel = self.alerts_channel
        message = cards.alert_message(alert, self.dashboard_url)
        await self._write(
            "chat.postMessage",
            channel,
            lambda: self.client.chat_postMessage(
                channel=channel, text=message.text, blocks=message.blocks, unfurl_links=False
            ),
        )

    async def _write(
        self,
        method: str,
        channel: str,
        call: Callable[[], Awaitable[AsyncSlackResponse]],
    ) -> AsyncSlackResponse:
        key = EDITS if method == EDITS else channel
        # One call per key at a time: a 429 holds the key before the next call is sent.
        async with self.pacer.serial(key):
            try:
                return await call()
            except SlackApiError as exc:
                raise self._refused(method, channel, key, exc) from exc
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                raise DeliveryError(f"Slack {method} to {channel} failed: {exc!r}") from exc

    def _refused(self, method: str, channel: str, key: str, exc: SlackApiError) -> DeliveryError:
        response = exc.response
        error = str(response.get("error") or f"HTTP {response.status_code}")
        if response.status_code == 429 or error == "ratelimited":
            wait = retry_after(response)
            self.pacer.hold(key, wait)
            log.info(
                "Slack rate-limited %s on %s; holding %s for %.0fs", method, channel, key, wait
            )
            return RateLimited(f"Slack {method} to {channel}: ratelimited", retry_after=wait)
        permanent = error in _PERMANENT
        return DeliveryError(f"Slack {method} to {channel}: {error}", retryable=not permanent)
