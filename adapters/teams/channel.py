"""`TeamsChannel`: posts, edits and nudges approval cards through the Bot Connector API."""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from botbuilder.core import CardFactory, MessageFactory, TurnContext
from botbuilder.integration.aiohttp import CloudAdapter
from botbuilder.schema import (
    Activity,
    ChannelAccount,
    ConversationAccount,
    ConversationParameters,
    ConversationReference,
)
from botbuilder.schema.teams import ChannelInfo, TeamsChannelData, TenantInfo
from botframework.connector import Channels
from msrest.exceptions import ClientRequestError, HttpOperationError

from adapters.teams import batch_cards, cards, queue_cards
from adapters.teams._turns import closing_connector
from adapters.teams.auth import TeamsAuth, TeamsCredentials
from bot.core.domain import Alert
from bot.core.errors import DeliveryError, RateLimited
from bot.core.pacing import Pacer
from bot.core.views import BatchView, CardView, QueueView

log = logging.getLogger("signoff.teams")

DM = "dm:"
"""Target prefix of a direct message: `dm:<Microsoft Entra object id>` (Engine.targets)."""
DEFAULT_RETRY_AFTER = 1.0
RETRY_JITTER = 0.2
"""A Retry-After is stretched by up to this fraction, never shortened, so that cards
throttled together do not all come back in the same instant."""

# Teams refuses these calls for reasons another attempt may fix: throttling, an outage, a
# bot not yet installed in the team or whose secret is being rotated. Everything else in
# 4xx means the call itself is wrong, and repeating it cannot help.
_RETRYABLE = frozenset({401, 403, 408, 412, 429})

THREAD_INTERVAL = 0.5
"""Seconds between calls on one thread (a channel for new threads, a card's own thread for
edits and replies): Teams allows a bot 60 per 30 s per thread, after short bursts of 7 per
second, so a steady pace never meets its 429s."""


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); None if unreadable."""
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        at = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return max((at - (now or datetime.now(UTC))).total_seconds(), 0.0)


def delivery_error(
    what: str,
    status: int,
    headers: Mapping[str, str],
    rng: random.Random,
    reason: str | None = None,
) -> DeliveryError:
    """The outbox's view of a refused connector call: retry (when, how soon) or give up.

    `reason` is the connector's own explanation (`error.code` and `error.message`), kept in
    the error so that the dead row on the dashboard says why Teams refused.
    """
    retryable = status in _RETRYABLE or status >= 500
    wait = retry_after_seconds(_header(headers, "retry-after"))
    if status == 429 and wait is None:
        wait = DEFAULT_RETRY_AFTER
    if wait is not None:
        wait *= 1 + rng.uniform(0, RETRY_JITTER)
    detail = f": {reason}" if reason else ""
    if status == 429:
        assert wait is not None
        return RateLimited(f"Teams {what} failed with HTTP 429{detail}", retry_after=wait)
    return DeliveryError(
        f"Teams {what} failed with HTTP {status}{detail}", retryable=retryable, retry_after=wait
    )


def connector_reason(exc: HttpOperationError) -> str | None:
    """`(code) message` from the connector's error body, when it sent one."""
    inner = getattr(getattr(exc, "error", None), "error", None)
    code, message = getattr(inner, "code", None), getattr(inner, "message", None)
    if message:
        return f"({code}) {message}" if code else str(message)
    return None


def _is_direct(ref: Mapping[str, Any]) -> bool:
    """The card was posted in a 1:1 chat (`tiers[].notify: dm | both`)."""
    return str(ref.get("target", "")).startswith(DM)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def _status(exc: HttpOperationError) -> tuple[int, Mapping[str, str]]:
    response = exc.response
    return int(getattr(response, "status_code", 0) or 0), dict(getattr(response, "headers", {}))


class TeamsChannel:
    """Implements `bot.core.ports.Channel` for Microsoft Teams through botbuilder's CloudAdapter.

    A card is posted proactively into the tier's Teams channel as a new thread
    (`create_conversation` with the channel id and tenant) whose root message holds the card
    and nothing else, the tier's `teams:` reviewers @-mentioned inside the card; edits use
    `update_activity` on that message's id; reminders are card replies in the card's thread.
    A `dm:<Entra object id>` target (`tiers[].notify: dm | both`) is posted in the bot's 1:1
    chat with that reviewer instead, and kept in step the same way.
    The returned ref holds everything needed to reach the card again after a restart:
    service URL, conversation id, activity id, tenant id, channel id (or user id).

    Calls on one thread take turns on a `Pacer` (one in flight, `THREAD_INTERVAL` apart);
    a 429 holds the thread for its Retry-After. Every method raises DeliveryError:
    RateLimited for throttling (429, with the Retry-After the service asked for, stretched
    by a little jitter), retryable for outages, network errors and
    install/permission problems; not retryable when the call itself is malformed. An edit
    of a card that no longer exists (404) is logged and skipped.
    """

    name = "teams"

    def __init__(
        self,
        auth: TeamsAuth,
        *,
        service_url: str,
        adapter: CloudAdapter | None = None,
        rng: random.Random | None = None,
        alerts_channel: str | None = None,
        dashboard_url: str | None = None,
        pacer: Pacer | None = None,
    ) -> None:
        self.pacer = pacer or Pacer(THREAD_INTERVAL, service="Teams")
        self.auth = auth
        self.service_url = service_url
        self.alerts_channel = alerts_channel
        self.dashboard_url = dashboard_url
        self.adapter = adapter or CloudAdapter(auth.framework)
        self.rng = rng or random.Random()

    @classmethod
    def create(
        cls,
        credentials: TeamsCredentials,
        *,
        service_url: str,
        verify: bool = True,
        openid_metadata_url: str | None = None,
        alerts_channel: str | None = None,
        dashboard_url: str | None = None,
    ) -> TeamsChannel:
        """A channel with its own adapter; raises ValueError if `verify` lacks an app id."""
        auth = TeamsAuth(credentials, verify=verify, openid_metadata_url=openid_metadata_url)
        return cls(
            auth,
            service_url=service_url,
            alerts_channel=alerts_channel,
            dashboard_url=dashboard_url,
        )

    @property
    def app_id(self) -> str:
        return self.auth.app_id

    @property
    def tenant_id(self) -> str | None:
        return self.auth.credentials.tenant_id

    # -- Channel -------------------------------------------------------------------------

    async def post_card(self, view: CardView) -> Mapping[str, Any]:
        if view.target.startswith(DM):
            # The reader is the one person the card is for: nobody to @-mention.
            return await self._direct(view.target, self._card_activity(view, ()))
        # The mentions live in the card: a message holding text and a card is split in two
        # by Teams, and the card half could then never be edited.
        activity = self._card_activity(view, cards.mentions(view))
        return await self._create(view.target, activity)

    async def post_batch(self, view: BatchView) -> Mapping[str, Any]:
        """Post a batch card as a new thread (no @-mentions: each item's card pinged already)."""
        return await self._create(view.batch.target, self._batch_activity(view))

    async def update_batch(self, ref: Mapping[str, Any], view: BatchView) -> None:
        activity = self._batch_activity(view)
        activity.id = str(ref["activity_id"])

        async def edit(turn: TurnContext) -> None:
            async with closing_connector(turn):
                await turn.update_activity(activity)

        await self._continue(ref, "update_activity", edit, gone_ok=True)

    async def post_queue(self, view: QueueView) -> Mapping[str, Any]:
        """Post a tier's queue card as a new thread (implements `QueueChannel`)."""
        return await self._create(view.card.target, self._queue_activity(view))

    async def update_queue(self, ref: Mapping[str, Any], view: QueueView) -> None:
        activity = self._queue_activity(view)
        activity.id = str(ref["activity_id"])

        async def edit(turn: TurnContext) -> None:
            async with closing_connector(turn):
                await turn.update_activity(activity)

        await self._continue(ref, "update_activity", edit, gone_ok=True)

    async def _create(self, target: str, activity: Activity) -> Mapping[str, Any]:
        parameters = ConversationParameters(
            is_group=True,
            channel_data=TeamsChannelData(
                channel=ChannelInfo(id=target),
                tenant=TenantInfo(id=self.tenant_id) if self.tenant_id else None,
            ),
            activity=activity,
            tenant_id=self.tenant_id,
        )
        created: dict[str, str] = {}

        async def capture(turn: TurnContext) -> None:
            async with closing_connector(turn):
                created["conversation_id"] = turn.activity.conversation.id
                created["activity_id"] = turn.activity.id

        await self._call(
            "create_conversation",
            target,
            lambda: self.adapter.create_conversation(
                self.app_id, capture, parameters, Channels.ms_teams, self.service_url
            ),
        )
        conversation_id = created["conversation_id"]
        # Teams names a channel thread `<channel>;messageid=<root message id>`; prefer that
        # id over the adapter's, which is a random placeholder when the service omits it.
        _, _, root = conversation_id.partition(";messageid=")
        return {
            "service_url": self.service_url,
            "conversation_id": conversation_id,
            "activity_id": root or created["activity_id"],
            "tenant_id": self.tenant_id,
            "channel_id": target,
            "target": target,
        }

    async def _direct(self, target: str, activity: Activity) -> Mapping[str, Any]:
        """Post `activity` in the bot's 1:1 chat with the `dm:<Entra object id>` user.

        As Microsoft documents for proactive messages: create (or find, Teams answers with
        the existing one) the personal conversation with the user as its only member,
        `isGroup` false and the tenant id, then send the card into it. The ref keeps the
        conversation and message ids, so verdicts edit this copy like any other.
        """
        if not self.tenant_id:
            raise DeliveryError(
                "Teams direct messages need the tenant id (teams.tenant_id_env)", retryable=False
            )
        user = target.removeprefix(DM)
        parameters = ConversationParameters(
            is_group=False,
            bot=ChannelAccount(id=self.app_id) if self.app_id else None,
            members=[ChannelAccount(id=user)],
            channel_data=TeamsChannelData(tenant=TenantInfo(id=self.tenant_id)),
            tenant_id=self.tenant_id,
        )
        sent: dict[str, str] = {}

        async def send(turn: TurnContext) -> None:
            outgoing = TurnContext.apply_conversation_reference(
                activity, TurnContext.get_conversation_reference(turn.activity)
            )
            # A new message of the chat, not a reply: botbuilder would otherwise reply to
            # the id it made up for the creation event.
            outgoing.reply_to_id = None
            async with closing_connector(turn):
                sent["conversation_id"] = turn.activity.conversation.id
                [answer] = await turn.adapter.send_activities(turn, [outgoing])
                sent["activity_id"] = answer.id if answer is not None else ""

        await self._call(
            "create_conversation",
            target,
            lambda: self.adapter.create_conversation(
                self.app_id, send, parameters, Channels.ms_teams, self.service_url
            ),
        )
        if not sent.get("activity_id"):
            raise DeliveryError("Teams sent the direct message without an id", retryable=True)
        return {
            "service_url": self.service_url,
            "conversation_id": sent["conversation_id"],
            "activity_id": sent["activity_id"],
            "tenant_id": self.tenant_id,
            "user_id": user,
            "target": target,
        }

    async def update_card(self, ref: Mapping[str, Any], view: CardView) -> None:
        activity = self._card_activity(view, ())
        activity.id = str(ref["activity_id"])

        async def edit(turn: TurnContext) -> None:
            async with closing_connector(turn):
                await turn.update_activity(activity)

        await self._continue(ref, "update_activity", edit, gone_ok=True)

    async def remind(self, ref: Mapping[str, Any], view: CardView) -> None:
        """A card in reply: the thread's reviewers @-mentioned in it, the deadline written
        in each reader's own time zone. In a 1:1 chat it is a plain new message."""
        direct = _is_direct(ref)
        found = () if direct else cards.mentions(view)
        reminder = cards.reminder_card(view, found)
        reply = MessageFactory.attachment(CardFactory.adaptive_card(reminder))
        reply.summary = cards.reminder_summary(view)
        root = str(ref["activity_id"])

        async def send(turn: TurnContext) -> None:
            outgoing = TurnContext.apply_conversation_reference(
                reply, TurnContext.get_conversation_reference(turn.activity)
            )
            # A reply to the card's own message keeps the reminder inside its thread; a 1:1
            # chat has no threads (and botbuilder would reply to an id it made up).
            outgoing.reply_to_id = None if direct else root
            async with closing_connector(turn):
                await turn.adapter.send_activities(turn, [outgoing])

        await self._continue(ref, "reply_to_activity", send)

    async def post_alert(self, alert: Alert) -> None:
        """Announce a warning sign in `alerts_channel` (implements `bot.core.ports.AlertSink`)."""
        if not self.alerts_channel:
            raise DeliveryError("teams.alerts_channel is not configured", retryable=False)
        activity = MessageFactory.attachment(
            CardFactory.adaptive_card(cards.alert_card(alert, self.dashboard_url))
        )
        activity.summary = alert.title
        parameters = ConversationParameters(
            is_group=True,
            channel_data=TeamsChannelData(
                channel=ChannelInfo(id=self.alerts_channel),
                tenant=TenantInfo(id=self.tenant_id) if self.tenant_id else None,
            ),
            activity=activity,
            tenant_id=self.tenant_id,
        )

        async def posted(turn: TurnContext) -> None:
            async with closing_connector(turn):
                pass

        await self._call(
            "create_conversation",
            self.alerts_channel,
            lambda: self.adapter.create_conversation(
                self.app_id, posted, parameters, Channels.ms_teams, self.service_url
            ),
        )

    # -- helpers -------------------------------------------------------------------------

    @staticmethod
    def _card_activity(view: CardView, found: Sequence[cards.Mention]) -> Activity:
        """A message holding the card alone: no `text` beside it (Teams refuses to edit a
        message with both), the `summary` being what a notification shows."""
        card = cards.card(view, mentions=found)
        activity = MessageFactory.attachment(CardFactory.adaptive_card(card))
        activity.summary = cards.fallback_text(view)
        return activity

    @staticmethod
    def _batch_activity(view: BatchView) -> Activity:
        card = batch_cards.batch_card(view)
        activity = MessageFactory.attachment(CardFactory.adaptive_card(card))
        activity.summary = str(card["fallbackText"])
        return activity

    @staticmethod
    def _queue_activity(view: QueueView) -> Activity:
        activity = MessageFactory.attachment(
            CardFactory.adaptive_card(queue_cards.queue_card(view))
        )
        activity.summary = queue_cards.fallback_text(view)
        return activity

    def _reference(self, ref: Mapping[str, Any]) -> ConversationReference:
        tenant = ref.get("tenant_id") or None
        direct = _is_direct(ref)
        return ConversationReference(
            channel_id=Channels.ms_teams,
            service_url=str(ref["service_url"]),
            conversation=ConversationAccount(
                id=str(ref["conversation_id"]),
                is_group=not direct,
                conversation_type="personal" if direct else "channel",
                tenant_id=tenant,
            ),
            bot=ChannelAccount(id=self.app_id),
        )

    async def _continue(
        self,
        ref: Mapping[str, Any],
        what: str,
        logic: Callable[[TurnContext], Awaitable[None]],
        *,
        gone_ok: bool = False,
    ) -> None:
        reference = self._reference(ref)
        await self._call(
            what,
            str(ref["conversation_id"]),
            lambda: self.adapter.continue_conversation(reference, logic, self.app_id),
            gone_ok=gone_ok,
        )

    async def _call(
        self,
        what: str,
        thread: str,
        call: Callable[[], Awaitable[Any]],
        *,
        gone_ok: bool = False,
    ) -> None:
        """Make `call` in `thread`'s turn (see `Pacer`); raises DeliveryError."""
        async with self.pacer.serial(thread):
            try:
                await call()
            except HttpOperationError as exc:
                status, headers = _status(exc)
                if gone_ok and status == 404:
                    log.warning("Teams %s: the card is gone (404); nothing to edit", what)
                    return
                error = delivery_error(what, status, headers, self.rng, connector_reason(exc))
                if isinstance(error, RateLimited) and error.retry_after is not None:
                    # Still in the thread's turn: the next call waits the hold out.
                    self.pacer.hold(thread, error.retry_after)
                if gone_ok and not error.retryable:
                    # An edit the connector refuses for good leaves a live card with buttons
                    # that no longer mean anything: that is a bug to see, not a quiet dead row.
                    log.error("Teams refused to edit a card for good: %s", error)
                raise error from exc
            except ClientRequestError as exc:
                raise DeliveryError(f"Teams {what} failed: {exc}", retryable=True) from exc
