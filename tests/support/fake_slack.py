"""A fake Slack Web API on a real loopback HTTP server (`HttpReceiver`).

Point `slack.api_url` at `fake.api_url`. It answers what Signoff calls, the way Slack does:

- `auth.test` (bolt calls it once), `chat.postMessage` (returns `channel` and a `ts` that
  increases; posted to a member id `U…` it lands in the app's direct message with them and
  answers that `D…` channel, as Slack does), `chat.update` (edits a posted message; unknown
  ts -> `message_not_found`), `chat.postEphemeral`, `views.open` (needs a `trigger_id`),
  `views.publish` (keeps each member's App Home, `home(user)`),
  `usergroups.users.list` (the members `set_group` gave a user group; unknown ->
  `no_such_subteam`);
- anything else -> `unknown_method`; a wrong or missing bearer token -> `invalid_auth`;
- `throttle(method, ...)` makes chosen calls answer 429 with `Retry-After`, as Slack does;
- `enforce_limits()` turns on Slack's documented rate limits (`tests.support.rate_limits`):
  beyond them a call gets HTTP 429, `Retry-After` and `{"ok": false, "error":
  "ratelimited"}`; `limits.early` lists calls that came back before their Retry-After;
- Socket Mode: `apps.connections.open` (needs the `xapp-` app token) answers a
  `ws://.../link?ticket=...` URL; that WebSocket says `hello`, carries the envelopes the
  test `deliver`s and records the client's acks. Like Slack, an envelope not acknowledged
  on a connection that closes is delivered again on the next one, and `drop()` sends
  `{"type": "disconnect"}` and closes the socket, as Slack does every few hours.

Every call is kept as a `SlackCall` with its arguments decoded from the JSON or form body
slack_sdk sent, and posts to `response_url`s (`fake.response_url(...)`) are kept too.

    async with FakeSlack() as slack:
        ...
        [post] = await slack.wait_for("chat.postMessage", 1)
        assert post.args["channel"] == "C0JUNIOR"
        envelope = slack.deliver("interactive", {"type": "block_actions", ...})
        ack = await slack.wait_ack(envelope)
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, parse_qsl

from tests.support.http_receiver import HttpReceiver, Peer, Recorded, Reply
from tests.support.rate_limits import TokenBuckets, slack_key, slack_limits

TOKEN = "xoxb-signoff-test"
APP_TOKEN = "xapp-1-A0SIGNOFF-1-signofftest"
APP_ID = "A0SIGNOFF"
TEAM_ID = "T0SIGNOFF"
BOT_USER = "U0SIGNOFF"
SOCKET_PATH = "/link"


@dataclass(frozen=True)
class SlackCall:
    """One Web API call: `status` is what the fake answered (200 or 429)."""

    method: str
    args: dict[str, Any]
    at: float
    status: int

    @property
    def blocks(self) -> list[dict[str, Any]]:
        blocks = self.args.get("blocks") or []
        return json.loads(blocks) if isinstance(blocks, str) else list(blocks)

    @property
    def view(self) -> dict[str, Any]:
        view = self.args.get("view") or {}
        return json.loads(view) if isinstance(view, str) else dict(view)


@dataclass
class Message:
    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    thread_ts: str | None = None
    edits: int = 0


@dataclass(frozen=True)
class Ack:
    """What the client sent back for an envelope, on which connection (1-based), when."""

    envelope_id: str
    payload: dict[str, Any] | None
    connection: int
    at: float


@dataclass
class _Envelope:
    id: str
    type: str
    payload: dict[str, Any]
    accepts_response_payload: bool
    drop_after_send: bool
    deliveries: int = 0
    on: int | None = None  # the connection it waits for an ack on
    acked: bool = False

    def message(self) -> dict[str, Any]:
        message: dict[str, Any] = {
            "envelope_id": self.id,
            "type": self.type,
            "payload": self.payload,
            "accepts_response_payload": self.accepts_response_payload,
        }
        if self.deliveries > 1:
            message |= {"retry_attempt": self.deliveries - 1, "retry_reason": "timeout"}
        return message


def decode(recorded: Recorded) -> dict[str, Any]:
    """The arguments slack_sdk sent, whether as JSON or as a form."""
    if not recorded.body:
        return dict(parse_qsl(recorded.query))
    if recorded.headers.get("content-type", "").startswith("application/json"):
        data = recorded.json()
        return dict(data) if isinstance(data, dict) else {}
    return dict(parse_qsl(recorded.text))


def action_ids(blocks: list[dict[str, Any]]) -> list[str]:
    """The action ids of every button on a message."""
    return [
        element["action_id"]
        for block in blocks
        if block.get("type") == "actions"
        for element in block.get("elements", [])
    ]


def button_value(blocks: list[dict[str, Any]], action_id: str) -> str | None:
    for block in blocks:
        for element in block.get("elements", []) if block.get("type") == "actions" else []:
            if element.get("action_id") == action_id:
                return str(element.get("value"))
    return None


def all_text(blocks: list[dict[str, Any]]) -> str:
    """Every text of a block list joined, for `in` checks."""
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            if isinstance(value.get("text"), str):
                found.append(value["text"])
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(blocks)
    return "\n".join(found)


class FakeSlack:
    def __init__(self, token: str = TOKEN) -> None:
        self.token = token
        self.rx = HttpReceiver()
        self._lock = threading.Lock()
        self._calls: list[SlackCall] = []
        self._messages: dict[tuple[str, str], Message] = {}
        self._ts = itertools.count(1)
        self._views = itertools.count(1)
        self._throttles: dict[str, Callable[[int], float | None]] = {}
        self._counts: dict[str, int] = {}
        self.limits: TokenBuckets | None = None
        self.app_token = APP_TOKEN
        self._tickets: set[str] = set()
        self._opened = 0
        self._live: dict[int, Peer] = {}
        self._envelopes: dict[str, _Envelope] = {}
        self._acks: list[Ack] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._dms: dict[str, str] = {}
        self._homes: dict[str, dict[str, Any]] = {}
        self._groups: dict[str, list[str]] = {}
        self._answers: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._post_message,
            "chat.update": self._update,
            "chat.postEphemeral": self._post_ephemeral,
            "views.open": self._views_open,
            "views.publish": self._views_publish,
            "usergroups.users.list": self._usergroup_members,
        }

    # -- lifecycle --------------------------------------------------------------------------

    def __enter__(self) -> Self:
        self.rx.__enter__()
        for method in [*self._answers, "users.info", "views.update", "apps.connections.open"]:
            self.rx.set_handler(f"/api/{method}", self._handle)
        self.rx.set_socket_handler(SOCKET_PATH, self._socket)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.rx.__exit__(exc_type, exc, tb)

    async def __aenter__(self) -> Self:
        return await asyncio.to_thread(self.__enter__)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.__exit__, exc_type, exc, tb)

    def reset(self) -> None:
        """Forget calls, messages and throttles, so one server can serve many tests."""
        with self._lock:
            self._calls.clear()
            self._messages.clear()
            self._throttles.clear()
            self._counts.clear()
            self.limits = None
            self._envelopes.clear()
            self._acks.clear()
            self._opened = 0
            self._dms.clear()
            self._homes.clear()
            self._groups.clear()
        self.rx.clear()

    @property
    def api_url(self) -> str:
        return f"{self.rx.url}/api/"

    def response_url(self, name: str) -> str:
        return f"{self.rx.url}/respond/{name}"

    # -- behaviour --------------------------------------------------------------------------

    def throttle(self, method: str, decide: Callable[[int], float | None]) -> None:
        """`decide(n)` for the n-th call (1-based) to `method`: a Retry-After in seconds to
        answer 429, or None to answer normally."""
        with self._lock:
            self._throttles[method] = decide

    def enforce_limits(self) -> TokenBuckets:
        """Answer beyond Slack's documented rate limits with 429 (until `reset`)."""
        limits = slack_limits()
        with self._lock:
            self.limits = limits
        return limits

    def deliver(
        self,
        kind: str,
        payload: dict[str, Any],
        *,
        accepts_response_payload: bool | None = None,
        drop_after_send: bool = False,
    ) -> str:
        """Send an envelope over Socket Mode (now, or once a connection is up); returns its id.

        `kind` is `interactive`, `slash_commands` or `events_api`. Slack lets the app answer
        in the ack for view submissions and slash commands, so that is the default there.
        `drop_after_send` closes the socket right after sending, before any ack can arrive.
        """
        if accepts_response_payload is None:
            accepts_response_payload = kind == "slash_commands" or (
                payload.get("type") == "view_submission"
            )
        envelope = _Envelope(
            str(uuid.uuid4()), kind, payload, accepts_response_payload, drop_after_send
        )
        with self._lock:
            self._envelopes[envelope.id] = envelope
        self.rx.call_soon(self._pump)
        return envelope.id

    def set_group(self, group: str, members: list[str]) -> None:
        """Make user group `group` (`S…`) hold these member ids from now on."""
        with self._lock:
            self._groups[group] = list(members)

    def drop(self, *, warn: bool = True, reason: str = "refresh_requested") -> None:
        """Close every open socket, after a `{"type": "disconnect"}` when `warn`."""
        self.rx.call_soon(lambda: self._spawn(self._drop(warn, reason)))

    # -- inspection -------------------------------------------------------------------------

    @property
    def socket_url(self) -> str:
        return f"ws://{self.rx.url.removeprefix('http://')}{SOCKET_PATH}"

    def connections(self) -> tuple[int, int]:
        """(sockets opened so far, sockets open now)."""
        with self._lock:
            return self._opened, len(self._live)

    async def wait_connected(self, opened: int = 1, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """Wait until `opened` sockets said hello and one of them is open."""
        async with asyncio.timeout(timeout):
            while True:
                total, live = self.connections()
                if total >= opened and live:
                    return
                await asyncio.sleep(0.005)

    def acks(self, envelope_id: str | None = None) -> list[Ack]:
        with self._lock:
            return [a for a in self._acks if envelope_id in (None, a.envelope_id)]

    def deliveries(self, envelope_id: str) -> int:
        """How many times the envelope was sent."""
        with self._lock:
            return self._envelopes[envelope_id].deliveries

    async def wait_ack(self, envelope_id: str, timeout: float = 10.0) -> Ack:  # noqa: ASYNC109
        deadline = time.monotonic() + timeout
        while not (found := self.acks(envelope_id)):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no ack for envelope {envelope_id} within {timeout}s")
            await asyncio.sleep(0.005)
        return found[0]

    def calls(self, method: str | None = None, *, ok: bool | None = None) -> list[SlackCall]:
        with self._lock:
            return [
                c
                for c in self._calls
                if (method is None or c.method == method)
                and (ok is None or (c.status == 200) == ok)
            ]

    async def wait_for(self, method: str, count: int, timeout: float = 5.0) -> list[SlackCall]:  # noqa: ASYNC109
        """Wait until `count` calls to `method` were answered (any status)."""
        await self.rx.wait_for(count, path=f"/api/{method}", timeout=timeout)
        # The receiver records a request before the handler answers it.
        for _ in range(500):
            found = self.calls(method)
            if len(found) >= count:
                return found
            await asyncio.sleep(0.002)
        raise TimeoutError(f"{method}: {len(self.calls(method))} answered, {count} expected")

    def message(self, channel: str, ts: str) -> Message:
        with self._lock:
            return self._messages[(channel, ts)]

    def messages(self, channel: str | None = None) -> list[Message]:
        with self._lock:
            return [m for m in self._messages.values() if channel in (None, m.channel)]

    def dm_channel(self, user: str) -> str | None:
        """The `D…` channel of the app's direct messages with `user`, once it has one."""
        with self._lock:
            return self._dms.get(user)

    def home(self, user: str) -> dict[str, Any] | None:
        """The App Home view last published for `user`."""
        with self._lock:
            return self._homes.get(user)

    def responses(self) -> list[dict[str, Any]]:
        """JSON bodies posted to response_urls (slash command answers), in order."""
        return [r.json() for r in self.rx.requests if r.path.startswith("/respond/")]

    # -- the server side (runs on the receiver's thread) ------------------------------------

    def _handle(self, recorded: Recorded) -> Reply:
        method = recorded.path.removeprefix("/api/")
        args = decode(recorded)
        with self._lock:
            n = self._counts[method] = self._counts.get(method, 0) + 1
            decide = self._throttles.get(method)
            limits = self.limits
        wait = decide(n) if decide else None
        key = slack_key(method, args) if limits is not None else None
        if wait is None and limits is not None and key is not None:
            wait = limits.check(key, recorded.at)
        if wait is not None:
            self._record(method, args, recorded.at, 429)
            return Reply.json(
                {"ok": False, "error": "ratelimited"},
                status=429,
                headers={"Retry-After": str(int(wait))},
            )
        if method == "apps.connections.open":
            body = self._connections_open(recorded.headers.get("authorization", ""))
            self._record(method, {}, recorded.at, 200)  # the token is the only argument
            return Reply.json(body)
        if recorded.headers.get("authorization") != f"Bearer {self.token}":
            self._record(method, args, recorded.at, 200)
            return Reply.json({"ok": False, "error": "invalid_auth"})
        answer = self._answers.get(method)
        body = answer(args) if answer else {"ok": False, "error": "unknown_method"}
        self._record(method, args, recorded.at, 200)
        return Reply.json(body)

    def _record(self, method: str, args: dict[str, Any], at: float, status: int) -> None:
        with self._lock:
            self._calls.append(SlackCall(method, args, at, status))

    def _connections_open(self, authorization: str) -> dict[str, Any]:
        if authorization == f"Bearer {self.token}":
            return {"ok": False, "error": "not_allowed_token_type"}
        if authorization != f"Bearer {self.app_token}":
            return {"ok": False, "error": "invalid_auth"}
        ticket = str(uuid.uuid4())
        with self._lock:
            self._tickets.add(ticket)
        return {"ok": True, "url": f"{self.socket_url}?ticket={ticket}&app_id={APP_ID}"}

    # -- Socket Mode (on the receiver's loop) -----------------------------------------------

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _socket(self, peer: Peer) -> None:
        ticket = (parse_qs(peer.query).get("ticket") or [""])[0]
        with self._lock:
            known = ticket in self._tickets
        if not known:
            await peer.refuse()
            return
        await peer.accept()
        hello = {
            "type": "hello",
            "num_connections": len(self._live) + 1,
            "debug_info": {"host": "applink-fake", "approximate_connection_time": 18060},
            "connection_info": {"app_id": APP_ID},
        }
        await peer.send_json(hello)
        with self._lock:
            self._opened += 1
            number = self._opened
            self._live[number] = peer
        self._pump()
        try:
            while (text := await peer.receive_text()) is not None:
                self._acked(json.loads(text), number)
        finally:
            with self._lock:
                self._live.pop(number, None)
                for envelope in self._envelopes.values():
                    if envelope.on == number and not envelope.acked:
                        envelope.on = None  # delivered again on the next connection
            self._pump()

    def _acked(self, message: dict[str, Any], connection: int) -> None:
        envelope_id = str(message.get("envelope_id") or "")
        ack = Ack(envelope_id, message.get("payload"), connection, time.time())
        with self._lock:
            self._acks.append(ack)
            envelope = self._envelopes.get(envelope_id)
            if envelope is not None:
                envelope.acked = True

    def _pump(self) -> None:
        """Send every envelope that waits to the newest open connection."""
        with self._lock:
            if not self._live:
                return
            number = max(self._live)
            peer = self._live[number]
            ready = [e for e in self._envelopes.values() if e.on is None and not e.acked]
            for envelope in ready:
                envelope.on = number
                envelope.deliveries += 1
        for envelope in ready:
            self._spawn(self._send(peer, envelope))

    async def _send(self, peer: Peer, envelope: _Envelope) -> None:
        await peer.send_json(envelope.message())
        if envelope.drop_after_send:
            envelope.drop_after_send = False
            await peer.close()

    async def _drop(self, warn: bool, reason: str) -> None:
        with self._lock:
            peers = list(self._live.values())
        for peer in peers:
            if warn:
                await peer.send_json(
                    {"type": "disconnect", "reason": reason, "debug_info": {"host": "fake"}}
                )
            await peer.close()

    def _auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "url": "https://signoff-test.slack.com/",
            "team": "Signoff Test",
            "user": "signoff",
            "team_id": TEAM_ID,
            "user_id": BOT_USER,
            "bot_id": "B0SIGNOFF",
            "is_enterprise_install": False,
        }

    def _post_message(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = str(args.get("channel") or "")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        if not args.get("text") and not args.get("blocks"):
            return {"ok": False, "error": "no_text"}
        if channel.startswith(("U", "W")):
            with self._lock:
                channel = self._dms.setdefault(channel, f"D0{len(self._dms) + 1:06d}")
        ts = f"1767600000.{next(self._ts):06d}"
        message = Message(
            channel, ts, str(args.get("text") or ""), _blocks(args), args.get("thread_ts")
        )
        with self._lock:
            self._messages[(channel, ts)] = message
        return {"ok": True, "channel": channel, "ts": ts, "message": {"text": message.text}}

    def _update(self, args: dict[str, Any]) -> dict[str, Any]:
        key = (str(args.get("channel")), str(args.get("ts")))
        with self._lock:
            message = self._messages.get(key)
            if message is None:
                return {"ok": False, "error": "message_not_found"}
            message.text = str(args.get("text") or "")
            message.blocks = _blocks(args)
            message.edits += 1
        return {"ok": True, "channel": key[0], "ts": key[1], "text": message.text}

    def _post_ephemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        if not args.get("channel") or not args.get("user"):
            return {"ok": False, "error": "invalid_arguments"}
        return {"ok": True, "message_ts": f"1767600000.{next(self._ts):06d}"}

    def _views_open(self, args: dict[str, Any]) -> dict[str, Any]:
        view = args.get("view")
        view = json.loads(view) if isinstance(view, str) else view
        if not args.get("trigger_id") or not isinstance(view, dict):
            return {"ok": False, "error": "invalid_arguments"}
        return {"ok": True, "view": {**view, "id": f"V{next(self._views):08d}"}}

    def _views_publish(self, args: dict[str, Any]) -> dict[str, Any]:
        view = args.get("view")
        view = json.loads(view) if isinstance(view, str) else view
        user = str(args.get("user_id") or "")
        if not user or not isinstance(view, dict) or view.get("type") != "home":
            return {"ok": False, "error": "invalid_arguments"}
        with self._lock:
            self._homes[user] = view
        return {"ok": True, "view": {**view, "id": f"V{next(self._views):08d}"}}

    def _usergroup_members(self, args: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            members = self._groups.get(str(args.get("usergroup") or ""))
        if members is None:
            return {"ok": False, "error": "no_such_subteam"}
        return {"ok": True, "users": list(members)}


def _blocks(args: dict[str, Any]) -> list[dict[str, Any]]:
    blocks = args.get("blocks") or []
    return json.loads(blocks) if isinstance(blocks, str) else list(blocks)
