"""The Block Kit pieces every Slack surface of Signoff is drawn from: the ids CONTRACT
section 8 gives its buttons and modal fields, Slack's limits, and the small builders that
clip each text object to them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from adapters.slack._mrkdwn import clip
from bot.core.domain import Verdict

Block = dict[str, Any]

APPROVE = "signoff_approve"
REJECT = "signoff_reject"
MODIFY = "signoff_modify"
DETAILS = "signoff_details"
CONFIRM = "signoff_confirm"
REVERSE = "signoff_reverse"
RESPOND = "signoff_respond"
# Approve + allow similar: the button and the modal it opens (adapters.slack.similar_modal).
ALLOW_SIMILAR = "signoff_allow_similar"
VERDICT_ACTIONS: Mapping[str, Verdict] = {
    APPROVE: Verdict.APPROVE,
    REJECT: Verdict.REJECT,
    MODIFY: Verdict.MODIFY,
    CONFIRM: Verdict.CONFIRM,
    REVERSE: Verdict.REVERSE,
    RESPOND: Verdict.RESPOND,
}

VERDICT_CALLBACK = "signoff_verdict"
DETAILS_CALLBACK = "signoff_details"
RATIONALE = "rationale"
MODIFIED_PAYLOAD = "modified_payload"
# The respond modal's answer, and the reject modal's pick among the request's reject_options.
RESPONSE = "response"
REJECT_OPTION = "reject_option"

MAX_TEXT = 3000
MAX_FIELD = 2000
MAX_HEADER = 150
MAX_BLOCKS = 50
MAX_INPUT = 3000
MAX_CONTEXT_ELEMENTS = 10


@dataclass(frozen=True)
class SlackMessage:
    """A message body: `text` is the notification and screen-reader fallback."""

    text: str
    blocks: list[Block]


def plain(text: str, limit: int = MAX_TEXT) -> dict[str, Any]:
    return {"type": "plain_text", "text": clip(text, limit) or " ", "emoji": True}


def mrkdwn(text: str, limit: int = MAX_TEXT) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": clip(text, limit) or " "}


def section(text: str) -> Block:
    return {"type": "section", "text": mrkdwn(text)}


def header(text: str) -> Block:
    return {"type": "header", "text": plain(text, MAX_HEADER)}


def button(action_id: str, label: str, value: str, style: str | None = None) -> dict[str, Any]:
    element: dict[str, Any] = {
        "type": "button",
        "action_id": action_id,
        "text": plain(label, 75),
        "value": value,
    }
    if style:
        element["style"] = style
    return element
