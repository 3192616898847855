"""A fake Slack Web API on a real loopback HTTP server (`HttpReceiver`).

Point `slack.api_url` at `fake.api_url`. It answers what Signoff calls, the way Slack does:

- `auth.test` (bolt calls it once), `chat.postMessage` (returns `channel` and a `ts` that
  increases), `chat.update` (edits a posted message; unknown ts -> `message_not_found`),
  `chat.postEphemeral`, `views.open` (needs a `trigger_id`);
- anything else -> `unknown_method`; a wrong or missing bearer token -> `invalid_auth`;
- `throttle(method, ...)` makes chosen calls answer 429 with `Retry-After`, as Slack does.

Every call is kept as a `SlackCall` with its arguments decoded from the JSON or form body
slack_sdk sent, and posts to `response_url`s (`fake.response_url(...)`) are kept too.

    async with FakeSlack() as slack:
        ...
        [post] = await slack.wait_for("chat.postMessage", 1)
        assert post.args["channel"] == "C0JUNIOR"
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qsl

from tests.support.http_receiver import HttpReceiver, Recorded, Reply

TOKEN = "xoxb-signoff-test"
TEAM_ID = "T0SIGNOFF"
BOT_USER = "U0SIGNOFF"


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
        self._answers: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._post_message,
            "chat.update": self._update,
            "chat.postEphemeral": self._post_ephemeral,
            "views.open": self._views_open,
        }

    # -- lifecycle --------------------------------------------------------------------------

    def __enter__(self) -> Self:
        self.rx.__enter__()
        for method in [*self._answers, "users.info", "views.update"]:
            self.rx.set_handler(f"/api/{method}", self._handle)
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

    # -- inspection -------------------------------------------------------------------------

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
        wait = decide(n) if decide else None
        if wait is not None:
            self._record(method, args, recorded.at, 429)
            return Reply.json(
                {"ok": False, "error": "ratelimited"},
                status=429,
                headers={"Retry-After": str(int(wait))},
            )
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


def _blocks(args: dict[str, Any]) -> list[dict[str, Any]]:
    blocks = args.get("blocks") or []
    return json.loads(blocks) if isinstance(blocks, str) else list(blocks)
