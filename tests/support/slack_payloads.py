"""Payloads shaped like Slack's own, for the HTTP endpoint (signed form bodies) and for
Socket Mode envelopes (the same payloads, unsigned, inside an envelope).

    payload = block_actions(card, "U0AAA", "signoff_approve", rid, response_url=...)
    body = form_body(payload)                     # POST /slack/events with signed(body, ...)
    fake.deliver("interactive", payload)          # or over the socket
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
from typing import Any
from urllib.parse import urlencode

from tests.support.fake_slack import APP_ID, TEAM_ID, Message

NAMES = {
    "U0AAA": "alice",
    "U0BBB": "bob",
    "U0CCC": "carol",
    "U0DDD": "dan",
    "U0EEE": "erin",
    "U0MAX": "max",
    "U0ZZZ": "zed",
    "U0OWNER": "owen",
    "U0REQ": "rita",
}

_triggers = itertools.count(1)


def trigger_id() -> str:
    return f"{next(_triggers)}.4242.0123456789abcdef"


def user(uid: str) -> dict[str, str]:
    return {"id": uid, "username": NAMES[uid], "name": NAMES[uid], "team_id": TEAM_ID}


def block_actions(
    card: Message, uid: str, action_id: str, rid: str, *, response_url: str
) -> dict[str, Any]:
    """A click on the button `action_id` of `card` by `uid`."""
    return {
        "type": "block_actions",
        "user": user(uid),
        "api_app_id": APP_ID,
        "token": "legacy-verification-token",
        "container": {
            "type": "message",
            "message_ts": card.ts,
            "channel_id": card.channel,
            "is_ephemeral": False,
        },
        "trigger_id": trigger_id(),
        "team": {"id": TEAM_ID, "domain": "signoff-test"},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": card.channel, "name": "approvals"},
        "message": {"type": "message", "ts": card.ts, "text": card.text, "blocks": card.blocks},
        "state": {"values": {}},
        "response_url": response_url,
        "actions": [
            {
                "action_id": action_id,
                "block_id": "actions",
                "text": {"type": "plain_text", "text": action_id},
                "value": rid,
                "type": "button",
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }


def home_block_actions(uid: str, home: dict[str, Any], action_id: str, rid: str) -> dict[str, Any]:
    """A click on the button `action_id` of item `rid` in `uid`'s App Home view `home`: Slack
    sends the view as the container, with no channel and no response_url."""
    block_id = next(
        (
            b.get("block_id", "")
            for b in home.get("blocks", [])
            if b.get("type") == "actions"
            and any(e.get("value") == rid for e in b.get("elements", []))
        ),
        "",
    )
    return {
        "type": "block_actions",
        "user": user(uid),
        "api_app_id": APP_ID,
        "token": "legacy-verification-token",
        "container": {"type": "view", "view_id": "V0HOME"},
        "trigger_id": trigger_id(),
        "team": {"id": TEAM_ID, "domain": "signoff-test"},
        "enterprise": None,
        "is_enterprise_install": False,
        "view": {**home, "id": "V0HOME", "team_id": TEAM_ID, "app_id": APP_ID},
        "actions": [
            {
                "action_id": action_id,
                "block_id": block_id,
                "text": {"type": "plain_text", "text": action_id},
                "value": rid,
                "type": "button",
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }


def app_home_opened(uid: str, tab: str = "home") -> dict[str, Any]:
    """The Events API envelope Slack sends when `uid` opens the app's Home (or Messages) tab."""
    return {
        "token": "legacy-verification-token",
        "team_id": TEAM_ID,
        "api_app_id": APP_ID,
        "type": "event_callback",
        "event_id": f"Ev{next(_triggers):08d}",
        "event_time": int(time.time()),
        "event": {
            "type": "app_home_opened",
            "user": uid,
            "channel": f"D0{uid}",
            "tab": tab,
            "event_ts": f"{time.time():.6f}",
        },
        "authorizations": [{"team_id": TEAM_ID, "user_id": "U0SIGNOFF", "is_bot": True}],
    }


def view_submission(
    uid: str,
    view: dict[str, Any],
    *,
    rationale: str | None = None,
    payload: str | None = None,
    typed: dict[str, str] | None = None,
    picked: dict[str, str] | None = None,
) -> dict[str, Any]:
    """`uid` submits the modal `view` (as views.open got it) with these inputs filled in:
    `typed` text inputs and `picked` static selects, by block id (= action id)."""
    values: dict[str, Any] = {}
    for block_id, text in (typed or {}).items():
        values[block_id] = {block_id: {"type": "plain_text_input", "value": text}}
    for block_id, choice in (picked or {}).items():
        values[block_id] = {
            block_id: {
                "type": "static_select",
                "selected_option": {
                    "text": {"type": "plain_text", "text": choice, "emoji": True},
                    "value": choice,
                },
            }
        }
    if rationale is not None:
        values["rationale"] = {"rationale": {"type": "plain_text_input", "value": rationale}}
    if payload is not None:
        values["modified_payload"] = {
            "modified_payload": {"type": "plain_text_input", "value": payload}
        }
    return {
        "type": "view_submission",
        "team": {"id": TEAM_ID, "domain": "signoff-test"},
        "user": user(uid),
        "api_app_id": APP_ID,
        "token": "legacy-verification-token",
        "trigger_id": trigger_id(),
        "view": {
            **view,
            "id": "V0MODAL",
            "team_id": TEAM_ID,
            "state": {"values": values},
            "hash": "1600000000.abcdef",
            "root_view_id": "V0MODAL",
            "app_id": APP_ID,
            "bot_id": "B0SIGNOFF",
            "external_id": view.get("external_id", ""),
        },
        "response_urls": [],
        "is_enterprise_install": False,
        "enterprise": None,
    }


def slash_command(uid: str, text: str, *, channel: str, response_url: str) -> dict[str, str]:
    """`/signoff <text>` typed by `uid` in `channel` (HTTP sends it as a form)."""
    return {
        "token": "legacy-verification-token",
        "team_id": TEAM_ID,
        "team_domain": "signoff-test",
        "channel_id": channel,
        "channel_name": "approvals",
        "user_id": uid,
        "user_name": NAMES[uid],
        "command": "/signoff",
        "text": text,
        "api_app_id": APP_ID,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger_id(),
    }


def form_body(payload: dict[str, Any]) -> bytes:
    """How Slack POSTs an interaction: a form with one `payload` field of JSON."""
    return urlencode({"payload": json.dumps(payload)}).encode()


def event_body(envelope: dict[str, Any]) -> bytes:
    """How Slack POSTs an Events API envelope: JSON (signed like any other request)."""
    return json.dumps(envelope).encode()


def signed(body: bytes, secret: str, *, ts: int | None = None) -> dict[str, str]:
    """The headers Slack signs a request with (v0 HMAC-SHA256 of "v0:<ts>:<body>")."""
    stamp = str(int(time.time()) if ts is None else ts)
    base = f"v0:{stamp}:".encode() + body
    signature = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {
        "content-type": "application/x-www-form-urlencoded",
        "x-slack-request-timestamp": stamp,
        "x-slack-signature": signature,
    }
