"""The pieces every Adaptive Card of Signoff in Teams is built from: the ids CONTRACT
section 8 gives its verbs and inputs, the size limits, text helpers and card elements.

Someone else's words go through `verbatim` (a `TextRun`, never read as markdown); our own
wording through `text_block`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Literal

from bot.core.domain import ApprovalRequest, Verdict, Vote, as_utc
from routing import Risk

Element = dict[str, Any]
Tone = Literal["good", "attention", "warning"]

CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
VERSION = "1.5"
RATIONALE = "rationale"
MODIFIED_PAYLOAD = "modified_payload"
# The answer to the request's question (verb `respond`) and the picked reject reason.
RESPONSE = "response"
REJECT_OPTION = "reject_option"
VERBS: Mapping[str, Verdict] = {
    "approve": Verdict.APPROVE,
    "reject": Verdict.REJECT,
    "modify": Verdict.MODIFY,
    "confirm": Verdict.CONFIRM,
    "reverse": Verdict.REVERSE,
    "respond": Verdict.RESPOND,
}

# Approve + allow similar (bot.core.similar): the verb of its ShowCard's button.
ALLOW_SIMILAR = "allow_similar"

MAX_CARD_BYTES = 24_000
MAX_SUMMARY = 300
MAX_TEXT = 600
MAX_RATIONALE = 500
MAX_SECTION = 3_000
MAX_INPUT = 2_000
MAX_EDITABLE_PAYLOAD = 4_000
DETAILS_BUDGETS = (12_000, 6_000, 2_000, 0)
MAX_LIST_ITEMS = 5
MAX_VOTES_SHOWN = 10
MAX_FIELDS = 12
MAX_FIELD = 200
MAX_CHANGES = 10

RISK_ICON = {Risk.LOW: "🟢", Risk.MEDIUM: "🟠", Risk.HIGH: "🔴"}
EMPTY: tuple[Any, ...] = (None, "", [], {})


# -- text helpers ------------------------------------------------------------------------


def clip(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, marking the cut with an ellipsis."""
    if limit <= 0:
        return ""
    if len(text) <= limit:
        return text
    return text[: limit - 1].rstrip() + "…"


def as_text(value: Any) -> str:
    """Strings as they are; anything else as compact, readable JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def pretty_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, indent=2, default=str)


def stamp(value: datetime) -> str:
    """An instant as the card's date functions: every reader's client writes it in their
    own time zone and locale ("5:00 PM on Mon, Dec 7, 2026"). Only a `TextBlock` (not a
    `TextRun`) evaluates them, and only in this exact RFC 3339 form."""
    iso = as_utc(value).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"{{{{TIME({iso})}}}} on {{{{DATE({iso}, SHORT)}}}}"


def reviewer_name(vote: Vote) -> str:
    return vote.name if vote.name and vote.name != vote.reviewer else vote.reviewer


def teams_reviewers(reviewers: Iterable[str]) -> list[str]:
    """The Microsoft Entra object ids of the `teams:` reviewers among `reviewers`."""
    return [r.removeprefix("teams:") for r in reviewers if r.startswith("teams:")]


def confidence(request: ApprovalRequest) -> str:
    return f"{request.confidence:.0%}"


# -- elements ----------------------------------------------------------------------------


def text_block(text: str, **style: Any) -> Element:
    """Our own wording (labels, banners): may use the card's light markdown."""
    return {"type": "TextBlock", "text": text or " ", "wrap": True, **style}


def verbatim(text: str, limit: int = MAX_TEXT, **style: Any) -> Element:
    """Someone else's words, shown as typed: a TextRun is never read as markdown."""
    return {
        "type": "RichTextBlock",
        "inlines": [{"type": "TextRun", "text": clip(text, limit) or " ", **style}],
    }


def runs(*parts: tuple[str, Mapping[str, Any]], spacing: str | None = None) -> Element:
    """One line of several TextRuns, each with its own style (a bold label, then words)."""
    block: Element = {
        "type": "RichTextBlock",
        "inlines": [{"type": "TextRun", "text": text or " ", **style} for text, style in parts],
    }
    if spacing:
        block["spacing"] = spacing
    return block


def label(text: str) -> Element:
    return text_block(text, size="Small", weight="Bolder", isSubtle=True, spacing="Medium")


def banner(message: str, tone: Tone) -> Element:
    return {
        "type": "Container",
        "style": {"good": "good", "attention": "attention", "warning": "warning"}[tone],
        "items": [verbatim(message, MAX_TEXT, weight="Bolder")],
    }


def execute(verb: str, title: str, data: Mapping[str, Any], style: str | None = None) -> Element:
    """An `Action.Execute` with an `Action.Submit` twin for clients without Universal Actions."""
    payload = {**data}
    action: Element = {"type": "Action.Execute", "title": title, "verb": verb, "data": payload}
    fallback: Element = {"type": "Action.Submit", "title": title, "data": {**payload, "verb": verb}}
    if style:
        action["style"] = style
        fallback["style"] = style
    action["fallback"] = fallback
    return action


def show_card(title: str, body: list[Element], actions: list[Element] | None = None) -> Element:
    card: Element = {"type": "AdaptiveCard", "body": body}
    if actions:
        card["actions"] = actions
    return {"type": "Action.ShowCard", "title": title, "card": card}


def action_set(actions: list[Element]) -> Element:
    return {"type": "ActionSet", "actions": actions}


def adaptive_card(body: list[Element], fallback: str) -> Element:
    return {
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": VERSION,
        "fallbackText": fallback,
        "body": body,
    }


def fits(card: Element) -> bool:
    return len(json.dumps(card, ensure_ascii=False).encode("utf-8")) <= MAX_CARD_BYTES
