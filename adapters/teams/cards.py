"""Adaptive Cards (version 1.5) for Signoff in Microsoft Teams.

Pure functions from domain values to JSON-ready dicts; nothing here talks to Teams or
imports botbuilder. The ids they use are CONTRACT section 8: `Action.Execute` verbs
`approve`, `reject`, `modify`, `confirm`, `reverse` carrying `data.request_id`, and an
`Input.Text` with id `rationale`. Every `Action.Execute` falls back to an `Action.Submit`
with the same data (plus `verb`) for clients older than Universal Actions.

Text an agent or a reviewer wrote is rendered through `RichTextBlock`/`TextRun`, which
Teams does not read as markdown, so a summary cannot smuggle in a link or formatting. All
such text is clipped, and the whole card is kept under `MAX_CARD_BYTES` (Teams refuses
messages over about 28 KB) by shrinking the Details section first: the full context stays
one click away in the web inbox.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from bot.core.answers import choices, wants_text
from bot.core.domain import Alert, ApprovalRequest, ReviewStatus, Status, Verdict, Vote, as_utc
from bot.core.views import CardKind, CardView
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

_RISK_ICON = {Risk.LOW: "🟢", Risk.MEDIUM: "🟠", Risk.HIGH: "🔴"}
_VERDICT_WORDS = {
    Verdict.APPROVE: ("✅", "approved"),
    Verdict.REJECT: ("❌", "rejected"),
    Verdict.MODIFY: ("✏️", "approved with changes"),
    Verdict.CONFIRM: ("👍", "confirmed"),
    Verdict.REVERSE: ("↩️", "reversed"),
    Verdict.RESPOND: ("💬", "answered"),
}
_OUTCOME = {
    Status.APPROVED: ("✅", "Approved"),
    Status.MODIFIED: ("✏️", "Approved with changes"),
    Status.REJECTED: ("❌", "Rejected"),
    Status.EXPIRED: ("⌛", "Expired"),
    Status.CANCELLED: ("🚫", "Cancelled by the agent"),
    Status.REVERSED: ("↩️", "Reversed"),
}
_EMPTY: tuple[Any, ...] = (None, "", [], {})
# Context keys shown on the face of the card; everything is in Details.
_FACE_CONTEXT = (
    ("summary", "Context"),
    ("recommendation", "Agent recommends"),
    ("alternatives", "Alternatives"),
    ("failure_reason", "Why the agent stopped"),
)


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


def when(value: datetime | None) -> str:
    """A UTC time a reader parses at a glance: ``09:15 UTC, 5 Jan 2026``."""
    if value is None:
        return "—"
    at = as_utc(value)
    return f"{at:%H:%M} UTC, {at.day} {at:%b %Y}"


def reviewer_name(vote: Vote) -> str:
    return vote.name if vote.name and vote.name != vote.reviewer else vote.reviewer


def teams_reviewers(reviewers: Iterable[str]) -> list[str]:
    """The Microsoft Entra object ids of the `teams:` reviewers among `reviewers`."""
    return [r.removeprefix("teams:") for r in reviewers if r.startswith("teams:")]


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


# -- the card ----------------------------------------------------------------------------


def card(
    view: CardView,
    *,
    message: str | None = None,
    tone: Tone = "attention",
    mentions: Sequence[Mention] = (),
) -> Element:
    """The Adaptive Card for one copy of a request as it should look now.

    `message` adds a banner at the top: the outcome of the clicker's own action (a refusal,
    a missing rationale, "your approval is recorded"), shown only in the invoke response.
    `mentions` @-mention reviewers inside the card (see `mention_card`): Teams cannot show
    a message that holds both text and a card, so the ping travels in the card itself.
    """
    for budget in DETAILS_BUDGETS:
        built = _card(view, message, tone, budget, mentions)
        if len(json.dumps(built, ensure_ascii=False).encode("utf-8")) <= MAX_CARD_BYTES:
            return built
    return built


def _card(
    view: CardView,
    message: str | None,
    tone: Tone,
    details_budget: int,
    mentions: Sequence[Mention] = (),
) -> Element:
    request = view.request
    kind = view.kind
    body: list[Element] = [_headline(view, kind)]
    if mentions:
        body.append(mention_block(mentions, "your verdict is needed."))
    if message:
        body.append(banner(message, tone))
    if kind == "escalated":
        note = view.note or f"Escalated to {request.tier}"
        body.append(
            text_block(
                f"{note}: its reviewers have the live card. This copy is kept for the record.",
                isSubtle=True,
            )
        )
    if kind == "final" and request.ended_by_stop:
        body.append(
            text_block(
                "Rejected because the agent was stopped: no verdict can be given on it.",
                isSubtle=True,
            )
        )
    if kind == "review":
        body.append(
            text_block(
                "The agent already went ahead (review lane). Confirm it, or reverse it "
                "with a reason.",
                isSubtle=True,
            )
        )
    body.append({"type": "FactSet", "facts": facts(view, kind)})
    body += _context(request)
    body += _votes(request.votes)
    actions: list[Element] = []
    if kind in ("approval", "review"):
        body.append(_rationale_input(request, kind))
        actions = _actions(view, kind, details_budget)
    card_json: Element = {
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": VERSION,
        "fallbackText": fallback_text(view),
        "body": body,
    }
    if actions:
        card_json["actions"] = actions
    if mentions:
        card_json["msteams"] = {"entities": mention_entities(mentions)}
    return card_json


def _headline(view: CardView, kind: CardKind) -> Element:
    request = view.request
    if kind == "approval":
        lead = f"{_RISK_ICON[request.risk]} Approval needed: "
    elif kind == "review":
        lead = "👀 Review: "
    elif kind == "escalated":
        lead = f"⤴️ Escalated to {request.tier}: "
    else:
        icon, word = outcome(request)
        lead = f"{icon} {word}: "
    return {
        "type": "RichTextBlock",
        "inlines": [
            {"type": "TextRun", "text": lead, "weight": "Bolder", "size": "Medium"},
            {
                "type": "TextRun",
                "text": clip(request.current_action.summary, MAX_SUMMARY) or " ",
                "weight": "Bolder",
                "size": "Medium",
            },
        ],
    }


def outcome(request: ApprovalRequest) -> tuple[str, str]:
    """Icon and word for a finished item (a confirmed review counts as finished)."""
    if request.review_status is ReviewStatus.CONFIRMED and request.status is not Status.REVERSED:
        return "👍", "Confirmed"
    return _OUTCOME.get(request.status, ("•", request.status.value.capitalize()))


def facts(view: CardView, kind: CardKind) -> list[dict[str, str]]:
    """The few facts a reviewer needs to decide in seconds."""
    request = view.request
    rows = [
        ("Agent", request.agent_id),
        ("Risk", f"{_RISK_ICON[request.risk]} {request.risk.value}"),
        ("Lane", request.lane.value),
        ("Rules fired", ", ".join(request.reasons) or "none"),
        ("Confidence", f"{request.confidence:.0%}"),
    ]
    if request.amount:
        rows.append(("Amount", f"{request.amount:,.2f} {request.currency}".strip()))
    rows.append(("Tier", request.tier or view.tier or "—"))
    approvals = len(request.approvals_for_current_action())
    rows.append(("Approvals", f"{approvals} of {request.approvals_required}"))
    if kind == "approval":
        rows.append(("Decide by", _deadline(view)))
    elif kind == "final" and request.decided_at is not None:
        rows.append(("Decided", when(request.decided_at)))
    if request.requested_by:
        rows.append(("Requested by", request.requested_by))
    return [{"title": title, "value": clip(value, MAX_TEXT)} for title, value in rows]


def _deadline(view: CardView) -> str:
    deadline = when(view.request.deadline_at)
    chain = list(view.tier_chain)
    tier = view.request.tier
    if tier in chain and chain.index(tier) + 1 < len(chain):
        return f"{deadline} (then it escalates to {chain[chain.index(tier) + 1]})"
    return deadline


def _context(request: ApprovalRequest) -> list[Element]:
    items: list[Element] = []
    for key, title in _FACE_CONTEXT:
        value = request.context.get(key)
        if value in _EMPTY:
            continue
        items.append(label(title))
        if isinstance(value, list):
            items += [verbatim(f"• {as_text(v)}", 200) for v in value[:MAX_LIST_ITEMS]]
            if len(value) > MAX_LIST_ITEMS:
                more = len(value) - MAX_LIST_ITEMS
                items.append(text_block(f"… and {more} more (see Details)", isSubtle=True))
        else:
            items.append(verbatim(as_text(value)))
    return items


def _votes(votes: Sequence[Vote]) -> list[Element]:
    if not votes:
        return []
    items: list[Element] = [label("Votes")]
    for vote in votes[-MAX_VOTES_SHOWN:]:
        icon, word = _VERDICT_WORDS[vote.verdict]
        line = f"{icon} {reviewer_name(vote)} {word} at {when(vote.at)}"
        if vote.rationale:
            line += f": “{clip(vote.rationale, MAX_RATIONALE)}”"
        items.append(verbatim(line, MAX_RATIONALE + 200))
    if len(votes) > MAX_VOTES_SHOWN:
        items.append(text_block(f"… {len(votes) - MAX_VOTES_SHOWN} earlier votes in the inbox"))
    return items


def _rationale_input(request: ApprovalRequest, kind: CardKind) -> Element:
    field: Element = {
        "type": "Input.Text",
        "id": RATIONALE,
        "isMultiline": True,
        "maxLength": MAX_INPUT,
        "placeholder": "Why? It is recorded in the audit trail.",
    }
    if request.risk is Risk.HIGH:
        field["label"] = "Rationale (required: high-risk item)"
        field["isRequired"] = True
        field["errorMessage"] = "Every verdict on a high-risk item needs a rationale."
    elif kind == "review":
        field["label"] = "Rationale (required to reverse)"
    else:
        field["label"] = "Rationale (required to reject or modify)"
    return field


def _actions(view: CardView, kind: CardKind, details_budget: int) -> list[Element]:
    request = view.request
    data = {"request_id": request.id, "tier": view.tier}
    actions: list[Element]
    if kind == "approval":
        actions = [
            execute("approve", "Approve", data, "positive"),
            _reject(request, data),
            _modify(request, data),
        ]
        if request.question or request.response_schema:
            actions.insert(0, _respond(request, data))
    else:
        actions = [
            execute("confirm", "Confirm", data, "positive"),
            execute("reverse", "Reverse", data, "destructive"),
        ]
    actions.append(show_card("Details", details(request, details_budget)))
    if view.inbox_url:
        actions.append({"type": "Action.OpenUrl", "title": "Open in inbox", "url": view.inbox_url})
    return actions


def _respond(request: ApprovalRequest, data: Mapping[str, Any]) -> Element:
    """Answer the agent's question: a choice set for a string `enum`, else a text box."""
    picks = choices(request.response_schema)
    field: Element
    if picks is not None:
        field = {
            "type": "Input.ChoiceSet",
            "id": RESPONSE,
            "label": "Your answer",
            "isRequired": True,
            "errorMessage": "Pick an answer.",
            "choices": [{"title": clip(p, 150), "value": p} for p in picks[:50]],
        }
    else:
        hint = "" if wants_text(request.response_schema) else " (JSON)"
        field = {
            "type": "Input.Text",
            "id": RESPONSE,
            "label": f"Your answer{hint}",
            "isMultiline": True,
            "isRequired": True,
            "errorMessage": "Type an answer.",
            "maxLength": MAX_INPUT,
        }
    body = [verbatim(request.question or "The agent asks for an answer.", MAX_TEXT), field]
    return show_card("Answer…", body, [execute("respond", "Send answer", data, "positive")])


def _reject(request: ApprovalRequest, data: Mapping[str, Any]) -> Element:
    """Reject at once, or with a reason picked from the request's `reject_options`."""
    if not request.reject_options:
        return execute("reject", "Reject", data, "destructive")
    pick: Element = {
        "type": "Input.ChoiceSet",
        "id": REJECT_OPTION,
        "label": "Reason",
        "choices": [{"title": clip(o, 150), "value": o} for o in request.reject_options[:50]],
    }
    return show_card("Reject…", [pick], [execute("reject", "Reject", data, "destructive")])


def _modify(request: ApprovalRequest, data: Mapping[str, Any]) -> Element:
    payload = pretty_json(dict(request.current_action.payload))
    if len(payload) > MAX_EDITABLE_PAYLOAD:
        return show_card(
            "Modify…",
            [text_block("This payload is too large to edit in Teams: modify it in the web inbox.")],
        )
    return show_card(
        "Modify…",
        [
            text_block(
                "Edit the action's payload (a JSON object). Approvals given to the old "
                "action no longer count; a rationale is required."
            ),
            {
                "type": "Input.Text",
                "id": MODIFIED_PAYLOAD,
                "label": "Payload",
                "isMultiline": True,
                "value": payload,
                "maxLength": MAX_EDITABLE_PAYLOAD * 2,
            },
        ],
        [execute("modify", "Approve with changes", data, "positive")],
    )


def details(request: ApprovalRequest, budget: int) -> list[Element]:
    """The full context, section by section, clipped to `budget` characters in all."""
    sections: list[tuple[str, Any]] = [
        ("Request", {"id": request.id, "thread_id": request.thread_id, "domain": request.domain}),
        (f"Action: {request.current_action.kind}", dict(request.current_action.payload)),
    ]
    if request.modified_action is not None:
        sections.append(("Original payload", dict(request.action.payload)))
    sections += [(key, value) for key, value in request.context.items() if value not in _EMPTY]
    if request.labels:
        sections.append(("labels", dict(request.labels)))
    items: list[Element] = []
    left = budget
    for title, value in sections:
        text = value if isinstance(value, str) else pretty_json(value)
        if left < 200:
            items.append(text_block("… the rest is in the web inbox.", isSubtle=True))
            break
        shown = clip(text, min(MAX_SECTION, left))
        left -= len(shown)
        items.append(label(title.replace("_", " ").capitalize()))
        items.append(verbatim(shown, MAX_SECTION, fontType="Monospace", size="Small"))
    return items or [text_block("The full context is in the web inbox.", isSubtle=True)]


def fallback_text(view: CardView) -> str:
    """What a client that cannot draw the card shows instead, and the notification text."""
    request = view.request
    summary = clip(request.current_action.summary, MAX_SUMMARY)
    kind = view.kind
    if kind == "approval":
        text = f"Approval needed ({request.risk.value} risk): {summary}"
    elif kind == "review":
        text = f"Review: {summary}"
    elif kind == "escalated":
        text = f"Escalated to {request.tier}: {summary}"
    else:
        text = f"{outcome(request)[1]}: {summary}"
    if view.inbox_url and kind in ("approval", "review"):
        text += f" (decide in the web inbox: {view.inbox_url})"
    return text


@dataclass(frozen=True)
class Mention:
    """One @-mention: `text` appears in the message, `id` is the Entra object id."""

    text: str
    id: str
    name: str


def mentions(view: CardView) -> list[Mention]:
    """@-mentions of the tier's `teams:` reviewers (names are not known until they act)."""
    ids = teams_reviewers(view.mentions)
    return [Mention(f"<at>Reviewer {n}</at>", aad, f"Reviewer {n}") for n, aad in enumerate(ids, 1)]


def mention_block(found: Sequence[Mention], then: str) -> Element:
    """A TextBlock carrying the `<at>` text of each mention, followed by `then`.

    Teams draws an @-mention inside an Adaptive Card only from a TextBlock whose text holds
    the entity's `<at>…</at>` text exactly, with the entity listed in `msteams.entities`.
    """
    return text_block(f"{' '.join(m.text for m in found)} {then}", weight="Bolder")


def mention_entities(found: Sequence[Mention]) -> list[dict[str, Any]]:
    """The card's `msteams.entities` for `found` (Teams' documented mention shape)."""
    return [
        {"type": "mention", "text": m.text, "mentioned": {"id": m.id, "name": m.name}}
        for m in found
    ]


def reminder_text(view: CardView, found: Sequence[Mention]) -> str:
    request = view.request
    who = " ".join(m.text for m in found) or "Reviewers"
    return (
        f"⏰ {who}: still waiting for a verdict on “{clip(request.current_action.summary, 150)}”. "
        f"Decide by {_deadline(view)}."
    )


def alert_card(alert: Alert, dashboard_url: str | None = None) -> Element:
    """A warning sign raised or cleared, for the alerts channel."""
    facts = [{"title": str(k), "value": str(v)} for k, v in alert.figures.items()]
    body: list[Element] = [
        banner(alert.title, "warning" if alert.active else "good"),
        verbatim(alert.message, MAX_TEXT, isSubtle=not alert.active),
    ]
    if facts:
        body.append({"type": "FactSet", "facts": facts})
    built: Element = {
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": VERSION,
        "fallbackText": f"{alert.title}: {alert.message}",
        "body": body,
    }
    if dashboard_url:
        built["actions"] = [
            {"type": "Action.OpenUrl", "title": "Open the dashboard", "url": dashboard_url}
        ]
    return built
