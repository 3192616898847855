"""A fake Bot Connector service (the Teams side of the Bot Framework) on a real HTTP server.

Point a Teams config's `service_url` at `FakeConnector.service_url`. It answers the three
calls Signoff makes, records them, and keeps each message's latest content so a test can
read the card that is on screen now::

    async with FakeConnector() as teams:
        ...  # post a card
        [created] = teams.created
        card = teams.card(created.conversation_id)
        teams.throttle("update", 3, retry_after="2")   # next three edits get 429

- ``POST /v3/conversations``: create a thread in a channel (``isGroup`` true,
  ``channelData.channel.id``); answers ``{"id": "<channel>;messageid=<n>", "activityId":
  "<n>"}``. With ``isGroup`` false it opens the bot's 1:1 chat with the one user in
  ``members`` (a proactive message, which Teams allows only with the tenant id) and answers
  ``{"id": "a:…"}``, the same id for the same user every time; the message is then sent
  into it. Anything else is the connector's 400 ``BadArgument``.
- ``POST /v3/conversations/{id}/activities[/{replyToId}]``: send or reply; answers ``{"id"}``.
- ``PUT /v3/conversations/{id}/activities/{activityId}``: edit; 404 for an unknown message,
  and the real connector's 400 ``BadSyntax`` for an edit holding both ``text`` and an
  attachment (Teams would have to split it into two messages, which an edit cannot do).

A queued throttle answers 429 (or another status) with Retry-After instead, and records
nothing but the attempt (`throttled`). `enforce_limits()` turns on Teams' documented limits
per bot per thread (`tests.support.rate_limits`): a call beyond them gets 429 with
Retry-After, is listed in `throttled` too, and `limits.early` lists calls that came back
before their Retry-After.
"""

from __future__ import annotations

import itertools
import re
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any, Literal

from tests.support.http_receiver import HttpReceiver, Recorded, Reply
from tests.support.rate_limits import SlidingWindows, teams_limits

Kind = Literal["create", "send", "update"]

_CREATE = re.compile(r"^/v3/conversations/?$")
_SEND = re.compile(r"^/v3/conversations/(?P<conv>[^/]+)/activities(?:/(?P<reply_to>[^/]+))?$")
_UPDATE = re.compile(r"^/v3/conversations/(?P<conv>[^/]+)/activities/(?P<activity>[^/]+)$")


@dataclass(frozen=True)
class Call:
    """One accepted call: which conversation and message it touched, the activity sent, and
    when it arrived (`time.time()`)."""

    kind: Kind
    conversation_id: str
    activity_id: str
    activity: dict[str, Any]
    body: dict[str, Any]
    authorization: str | None
    at: float = 0.0

    @property
    def card(self) -> dict[str, Any] | None:
        """The Adaptive Card in the activity, if it carries one."""
        for attachment in self.activity.get("attachments") or []:
            if attachment.get("contentType") == "application/vnd.microsoft.card.adaptive":
                content: dict[str, Any] = attachment["content"]
                return content
        return None


class FakeConnector(HttpReceiver):
    """`HttpReceiver` routing by path pattern, with a small model of Teams threads."""

    def __init__(self) -> None:
        super().__init__()
        self._ids = itertools.count(1_700_000_000_001)
        self._state = threading.Lock()
        self._calls: list[Call] = []
        self._messages: dict[tuple[str, str], dict[str, Any]] = {}
        self._chats: dict[str, str] = {}
        self._throttles: dict[Kind, deque[tuple[int, str | None, tuple[str, str]]]] = {
            "create": deque(),
            "send": deque(),
            "update": deque(),
        }
        self.throttled: list[Recorded] = []
        self.limits: SlidingWindows | None = None
        self.refused: list[Recorded] = []
        """Edits refused with 400 because they held text beside a card."""

    @property
    def service_url(self) -> str:
        return f"{self.url}/"

    # -- inspection ----------------------------------------------------------------------

    @property
    def calls(self) -> list[Call]:
        with self._state:
            return list(self._calls)

    def of(self, kind: Kind) -> list[Call]:
        return [c for c in self.calls if c.kind == kind]

    @property
    def created(self) -> list[Call]:
        return self.of("create")

    @property
    def updates(self) -> list[Call]:
        return self.of("update")

    @property
    def replies(self) -> list[Call]:
        return self.of("send")

    def chat(self, user: str) -> str:
        """The id of the bot's 1:1 chat with `user` (the member id it was opened with)."""
        with self._state:
            return self._chats[user]

    def sent_to(self, user: str) -> list[Call]:
        """Every message sent into the 1:1 chat with `user`, oldest first."""
        conversation = self.chat(user)
        return [c for c in self.replies if c.conversation_id == conversation]

    def message(self, conversation_id: str, activity_id: str | None = None) -> dict[str, Any]:
        """The latest content of a message (the thread's root message by default)."""
        activity_id = activity_id or conversation_id.partition(";messageid=")[2]
        with self._state:
            return self._messages[(conversation_id, activity_id)]

    def card(self, conversation_id: str, activity_id: str | None = None) -> dict[str, Any]:
        """The Adaptive Card on screen now in that message."""
        for attachment in self.message(conversation_id, activity_id).get("attachments") or []:
            if attachment.get("contentType") == "application/vnd.microsoft.card.adaptive":
                content: dict[str, Any] = attachment["content"]
                return content
        raise AssertionError(f"no Adaptive Card in {conversation_id}")

    def reset(self) -> None:
        """Forget every call, message and pending throttle (to reuse one server across tests)."""
        self.clear()
        with self._state:
            self._calls.clear()
            self._messages.clear()
            self._chats.clear()
            for queue in self._throttles.values():
                queue.clear()
            self.throttled.clear()
            self.refused.clear()
            self.limits = None

    def enforce_limits(self) -> SlidingWindows:
        """Answer beyond Teams' documented per-thread limits with 429 (until `reset`)."""
        limits = teams_limits()
        with self._state:
            self.limits = limits
        return limits

    def throttle(
        self,
        kind: Kind,
        times: int,
        retry_after: str | None = "1",
        status: int = 429,
        error: tuple[str, str] = ("TooManyRequests", "slow down"),
    ) -> None:
        """Answer the next `times` calls of `kind` with `status` (429: throttled), this
        Retry-After (None: no header) and this `(code, message)` error body."""
        with self._state:
            self._throttles[kind].extend([(status, retry_after, error)] * times)

    # -- the service ---------------------------------------------------------------------

    async def _reply(self, recorded: Recorded) -> Reply:
        path, method = recorded.path, recorded.method
        if method == "POST" and _CREATE.match(path):
            return self._answer("create", recorded, None)
        if method == "POST" and (match := _SEND.match(path)):
            return self._answer("send", recorded, match)
        if method == "PUT" and (match := _UPDATE.match(path)):
            return self._answer("update", recorded, match)
        return await super()._reply(recorded)

    def _answer(self, kind: Kind, recorded: Recorded, match: re.Match[str] | None) -> Reply:
        with self._state:
            if self._throttles[kind]:
                status, wait, (code, text) = self._throttles[kind].popleft()
                self.throttled.append(recorded)
                return Reply.json(
                    {"error": {"code": code, "message": text}},
                    status,
                    {"Retry-After": wait} if wait is not None else {},
                )
            body = recorded.json()
            if self.limits is not None:
                thread = (
                    body["channelData"]["channel"]["id"]
                    if kind == "create"
                    else match["conv"]
                    if match is not None
                    else ""
                )
                seconds = self.limits.check(thread, recorded.at)
                if seconds is not None:
                    self.throttled.append(recorded)
                    return Reply.json(
                        {"error": {"code": "TooManyRequests", "message": "rate limit exceeded"}},
                        429,
                        {"Retry-After": str(seconds)},
                    )
            auth = recorded.headers.get("authorization")
            if kind == "create" and not body.get("isGroup"):
                return self._personal(body, auth)
            if kind == "create":
                channel = ((body.get("channelData") or {}).get("channel") or {}).get("id")
                if not channel:
                    return _bad_argument("a group conversation needs channelData.channel.id")
                root = str(next(self._ids))
                conversation = f"{channel};messageid={root}"
                activity = dict(body.get("activity") or {})
                self._messages[(conversation, root)] = activity
                self._calls.append(
                    Call(kind, conversation, root, activity, body, auth, recorded.at)
                )
                return Reply.json({"id": conversation, "activityId": root}, 201)
            assert match is not None
            conversation = match["conv"]
            if kind == "send":
                new_id = str(next(self._ids))
                self._messages[(conversation, new_id)] = body
                self._calls.append(Call(kind, conversation, new_id, body, body, auth, recorded.at))
                return Reply.json({"id": new_id}, 201)
            activity_id = match["activity"]
            if (conversation, activity_id) not in self._messages:
                return Reply.json(
                    {"error": {"code": "ActivityNotFoundInConversation", "message": "gone"}},
                    404,
                )
            if body.get("text") and body.get("attachments"):
                self.refused.append(recorded)
                return Reply.json(
                    {
                        "error": {
                            "code": "BadSyntax",
                            "message": "Activity resulted into multiple skype activities",
                        }
                    },
                    400,
                )
            self._messages[(conversation, activity_id)] = body
            self._calls.append(Call(kind, conversation, activity_id, body, body, auth, recorded.at))
            return Reply.json({"id": activity_id}, 200)

    def _personal(self, body: dict[str, Any], auth: str | None) -> Reply:
        """Open (or find) the bot's 1:1 chat with the one member; holds `self._state`."""
        members = body.get("members") or []
        # The REST reference spells it `tenantId`, botbuilder-python sends `tenantID`.
        tenant = body.get("tenantId") or body.get("tenantID")
        tenant = tenant or ((body.get("channelData") or {}).get("tenant") or {}).get("id")
        if len(members) != 1 or not isinstance(members[0], dict) or not members[0].get("id"):
            return _bad_argument("a 1:1 conversation needs exactly one member")
        if not tenant:
            return _bad_argument("a 1:1 conversation needs the tenant id")
        user = str(members[0]["id"])
        conversation = self._chats.setdefault(user, f"a:1{len(self._chats) + 1:04d}{user}")
        self._calls.append(Call("create", conversation, "", {}, body, auth))
        return Reply.json({"id": conversation}, 201)


def _bad_argument(message: str) -> Reply:
    return Reply.json({"error": {"code": "BadArgument", "message": message}}, 400)
