"""Reading what Slack sends with an interaction: who clicked, in which channel, what was
typed into a modal, and the ids a modal carries from the click to its submission (pure)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.core import jsondepth
from bot.core.domain import Verdict

CHANNEL = "slack"


@dataclass(frozen=True)
class Actor:
    """Who clicked: `slack:<user id>` is the reviewer identity, `name` what cards show."""

    user_id: str
    name: str

    @property
    def reviewer(self) -> str:
        return f"{CHANNEL}:{self.user_id}"


def actor_of(body: Mapping[str, Any]) -> Actor:
    user = body.get("user") or {}
    user_id = str(user.get("id") or body.get("user_id") or "")
    name = user.get("name") or user.get("username") or body.get("user_name") or user_id
    return Actor(user_id, str(name))


def channel_of(body: Mapping[str, Any]) -> str | None:
    channel = body.get("channel") or {}
    container = body.get("container") or {}
    found = channel.get("id") or container.get("channel_id")
    return str(found) if found else None


def modal_external_id(channel: str | None, trigger_id: str | None) -> str | None:
    """Carries the card's channel into the modal (Slack sends `external_id` back on submit),
    so a refusal after submit can still be an ephemeral message in that channel."""
    if not channel or not trigger_id:
        return None
    return f"signoff:{channel}:{trigger_id}"[:255]


def channel_from_external_id(view: Mapping[str, Any]) -> str | None:
    parts = str(view.get("external_id") or "").split(":", 2)
    return parts[1] if len(parts) == 3 and parts[0] == "signoff" and parts[1] else None


def parse_metadata(view: Mapping[str, Any]) -> tuple[str, Verdict] | None:
    try:
        meta = json.loads(view.get("private_metadata") or "")
        return str(meta["request_id"]), Verdict(meta["verdict"])
    except (ValueError, KeyError, TypeError):
        return None


def input_value(view: Mapping[str, Any], block_id: str) -> str:
    """What the user typed (a text input) or picked (a static select) in block `block_id`."""
    values = (view.get("state") or {}).get("values") or {}
    value = (values.get(block_id) or {}).get(block_id) or {}
    picked = value.get("selected_option") or {}
    return str(value.get("value") or picked.get("value") or "")


def parse_payload(text: str) -> tuple[dict[str, Any] | None, str | None]:
    """The edited payload of a modify, or the problem to show under the input."""
    if not text.strip():
        return None, 'Paste the edited payload: a JSON object such as {"invoice": "INV-1"}.'
    try:
        value = jsondepth.loads(text)
    except jsondepth.TooDeep as exc:
        return None, f"The payload nests too deep: the limit is {exc.limit} levels."
    except json.JSONDecodeError as exc:
        return None, f"Not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})."
    if not isinstance(value, dict):
        return None, f"The payload must be a JSON object {{...}}, not {type(value).__name__}."
    return value, None


def sentence(message: str) -> str:
    """A refusal's message as a sentence: capitalised, one full stop."""
    message = message.strip().rstrip(".")
    return (message[:1].upper() + message[1:] + ".") if message else ""
