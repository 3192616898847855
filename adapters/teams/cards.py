"""Adaptive Cards (version 1.5) for Signoff in Microsoft Teams.

Pure functions from domain values to JSON-ready dicts; nothing here talks to Teams or
imports botbuilder. The ids they use are CONTRACT section 8: `Action.Execute` verbs
`approve`, `reject`, `modify`, `confirm`, `reverse`, `respond` carrying `data.request_id`,
and an `Input.Text` with id `rationale`; where a standing approval could cover items like
this one, an "Approve + allow similar…" ShowCard with inputs `when`, `ttl`, `max_uses`,
`reason` (and `allow_high` on a high-risk item) and verb `allow_similar`. Every
`Action.Execute` falls back to an `Action.Submit` with the same data (plus `verb`) for
clients older than Universal Actions.

The first screen decides: before any payload a card says what the agent wants to do, the
amount, why a person sees it, the agent's recommendation and confidence, who must decide,
what the deadline will do, and then the buttons (an `ActionSet` in the body, since a card's
own `actions` are drawn below everything). The payload, context and votes follow. The
words come from `bot.core.wording` through the `CardView`; times are written with the
card's `{{DATE()}}`/`{{TIME()}}` functions, so each reader sees their own time zone.

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
from bot.core.domain import Alert, ApprovalRequest, Verdict, Vote, as_utc, readable
from bot.core.learning import STANDING_CHANNEL
from bot.core.similar import SimilarForm, offered, prefilled
from bot.core.views import CardKind, CardView
from bot.core.wording import payload_changes
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
_VERDICT_WORDS = {
    Verdict.APPROVE: ("✅", "approved"),
    Verdict.REJECT: ("❌", "rejected"),
    Verdict.MODIFY: ("✏️", "approved with changes"),
    Verdict.CONFIRM: ("👍", "confirmed"),
    Verdict.REVERSE: ("↩️", "reversed"),
    Verdict.RESPOND: ("💬", "answered"),
}
_EMPTY: tuple[Any, ...] = (None, "", [], {})
# Context keys shown under the payload; everything is in Details. The recommendation is
# on the first screen.
_FACE_CONTEXT = (
    ("summary", "Context"),
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


# -- the card ----------------------------------------------------------------------------


def card(
    view: CardView,
    *,
    message: str | None = None,
    tone: Tone = "attention",
    mentions: Sequence[Mention] = (),
    similar: SimilarForm | None = None,
) -> Element:
    """The Adaptive Card for one copy of a request as it should look now.

    `message` adds a banner at the top: the outcome of the clicker's own action (a refusal,
    a missing rationale, "your approval is recorded"), shown only in the invoke response.
    `mentions` @-mention reviewers inside the card (see `mention_card`): Teams cannot show
    a message that holds both text and a card, so the ping travels in the card itself.
    `similar` fills the "Approve + allow similar…" form with what the clicker typed (it is
    prefilled from the item otherwise).
    """
    for budget in DETAILS_BUDGETS:
        built = _card(view, message, tone, budget, mentions, similar)
        if fits(built):
            return built
    return built


def _card(
    view: CardView,
    message: str | None,
    tone: Tone,
    details_budget: int,
    mentions: Sequence[Mention] = (),
    similar: SimilarForm | None = None,
) -> Element:
    kind = view.kind
    body: list[Element] = [headline(view)]
    if mentions:
        body.append(mention_block(mentions, "your verdict is needed."))
    if message:
        body.append(banner(message, tone))
    body += first_screen(view)
    if kind in ("approval", "review"):
        body.append(_rationale_input(view.request, kind))
        body.append(action_set(verdict_actions(view, similar)))
    body += below(view)
    if kind in ("approval", "review"):
        more = [show_card("Details (JSON)", details(view.request, details_budget))]
        if view.inbox_url:
            more.append({"type": "Action.OpenUrl", "title": "Open in inbox", "url": view.inbox_url})
        body.append(action_set(more))
    built = adaptive_card(body, fallback_text(view))
    if mentions:
        built["msteams"] = {"entities": mention_entities(mentions)}
    return built


def headline(view: CardView, summary_limit: int = MAX_SUMMARY) -> Element:
    """What the agent wants to do, led by what the card asks of its reader."""
    request = view.request
    kind = view.kind
    if kind == "approval":
        lead = f"{RISK_ICON[request.risk]} Approval needed: "
    elif kind == "review":
        lead = "👀 Review: "
    elif kind == "escalated":
        lead = f"⤴️ Escalated to {request.tier}: "
    else:
        icon, word = outcome_words(view)
        lead = f"{icon} {word}: "
    style = {"weight": "Bolder", "size": "Medium"}
    return runs((lead, style), (clip(request.current_action.summary, summary_limit), style))


def outcome_words(view: CardView) -> tuple[str, str]:
    """Icon and label of a finished item, as `Wording.outcome` words it."""
    if view.outcome is not None:
        return view.outcome.icon, view.outcome.label
    return "•", readable(view.request.status.value)


def first_screen(view: CardView) -> list[Element]:
    """Everything a reviewer needs to decide, in the order they read it, before any payload."""
    request = view.request
    kind = view.kind
    items: list[Element] = []
    if kind == "escalated":
        note = view.note or f"Escalated to {request.tier}"
        items.append(
            text_block(
                f"{note}: its reviewers have the live card. This copy is kept for the record.",
                isSubtle=True,
            )
        )
    elif kind == "review":
        items.append(
            text_block(
                "The agent already went ahead. Confirm it, or reverse it with a reason.",
                isSubtle=True,
            )
        )
    elif kind == "final":
        items += _outcome(view)
    items += changes(request)
    items.append({"type": "FactSet", "facts": key_facts(view)})
    items += reasons(view)
    items += recommendation(request)
    if request.question and kind == "approval":
        items += [label("The agent asks"), verbatim(request.question)]
    if kind in ("approval", "review") and view.who_decides:
        items.append(runs((f"👥 {clip(view.who_decides, MAX_TEXT)}", {}), spacing="Medium"))
    if kind == "approval" and view.deadline is not None:
        items.append(text_block(f"⏰ {view.deadline.sentence(stamp(view.deadline.at))}"))
    return items


def key_facts(view: CardView) -> list[dict[str, str]]:
    """The amount first, then whose request it is and how risky: the header facts."""
    request = view.request
    rows = []
    if view.amount:
        rows.append(("Amount", view.amount))
    rows.append(("Agent", request.agent_id))
    rows.append(("Risk", f"{RISK_ICON[request.risk]} {request.risk.value}"))
    return [{"title": title, "value": clip(value, MAX_TEXT)} for title, value in rows]


def reasons(view: CardView) -> list[Element]:
    """Why a person sees it: each rule's title, then its sentence about this request."""
    if not view.reasons:
        return []
    items: list[Element] = [label("Why you see this")]
    for reason in view.reasons:
        parts: list[tuple[str, Mapping[str, Any]]] = [(reason.title, {"weight": "Bolder"})]
        if reason.explain:
            parts.append((f" — {clip(reason.explain, MAX_TEXT)}", {}))
        items.append(runs(*parts, spacing="None"))
    return items


def recommendation(request: ApprovalRequest) -> list[Element]:
    advice = request.context.get("recommendation")
    sure = f"{confidence(request)} confident"
    if advice in _EMPTY:
        return [label("Agent's confidence"), verbatim(sure)]
    return [
        label("Agent recommends"),
        runs((clip(as_text(advice), MAX_TEXT), {}), (f" ({sure})", {"isSubtle": True})),
    ]


def changes(request: ApprovalRequest) -> list[Element]:
    """What a reviewer's modify changed, old → new, so the header shows the new values."""
    if request.modified_action is None:
        return []
    found = payload_changes(request.action.payload, request.modified_action.payload)
    if not found:
        return []
    items: list[Element] = [label("Changed by a reviewer")]
    for change in found[:MAX_CHANGES]:
        items.append(
            runs(
                (f"{change.path}: ", {"weight": "Bolder"}),
                (clip(_value(change.old), MAX_FIELD), {"strikethrough": True, "isSubtle": True}),
                (" → ", {}),
                (clip(_value(change.new), MAX_FIELD), {"weight": "Bolder"}),
                spacing="None",
            )
        )
    if len(found) > MAX_CHANGES:
        items.append(text_block(f"… and {len(found) - MAX_CHANGES} more changes", isSubtle=True))
    return items


def _value(value: Any) -> str:
    return "—" if value is None else as_text(value)


def _outcome(view: CardView) -> list[Element]:
    """Who decided and why, in `Wording.outcome`'s words."""
    request = view.request
    found = view.outcome
    items: list[Element] = []
    if found is not None:
        names = ", ".join(dict.fromkeys(reviewer_name(v) for v in found.deciders))
        line = f"{found.icon} {found.label}"
        if names:
            line += f" by {names}"
        elif found.note:
            line += f": {found.note}"
        items.append(verbatim(line, MAX_TEXT, weight="Bolder"))
        if found.rationale:
            items.append(verbatim(f"“{clip(found.rationale, MAX_RATIONALE)}”", MAX_RATIONALE + 2))
    if request.decided_at is not None:
        items.append(text_block(f"Decided at {stamp(request.decided_at)}", isSubtle=True))
    return items


# -- below the buttons -------------------------------------------------------------------


def below(view: CardView) -> list[Element]:
    """The payload as labelled fields, the agent's context, and the votes so far."""
    request = view.request
    return [*payload_fields(request), *_context(request), *_votes(request.votes)]


def payload_fields(request: ApprovalRequest) -> list[Element]:
    """The action's payload as `field: value` lines; nested values compact (JSON in Details)."""
    action = request.current_action
    items: list[Element] = [label(f"What the agent wants to do ({clip(action.kind, 80)})")]
    fields = list(action.payload.items())
    for key, value in fields[:MAX_FIELDS]:
        items.append(
            runs(
                (f"{clip(readable(str(key)), 80)}: ", {"weight": "Bolder"}),
                (clip(_value(value), MAX_FIELD), {}),
                spacing="None",
            )
        )
    if not fields:
        items.append(text_block("No payload.", isSubtle=True))
    if len(fields) > MAX_FIELDS:
        more = len(fields) - MAX_FIELDS
        items.append(text_block(f"… and {more} more fields (see Details)", isSubtle=True))
    return items


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
        line = f"{icon} {reviewer_name(vote)} {word}"
        if vote.rationale:
            line += f": “{clip(vote.rationale, MAX_RATIONALE)}”"
        items.append(verbatim(line, MAX_RATIONALE + 200))
        items.append(text_block(stamp(vote.at), isSubtle=True, size="Small", spacing="None"))
    if len(votes) > MAX_VOTES_SHOWN:
        items.append(text_block(f"… {len(votes) - MAX_VOTES_SHOWN} earlier votes in the inbox"))
    return items


# -- inputs and buttons ------------------------------------------------------------------


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


def verdict_actions(view: CardView, similar: SimilarForm | None = None) -> list[Element]:
    """The verdict buttons of a live card (`data` says which request and whose tier), with
    "Approve + allow similar…" where a standing approval could cover items like this one."""
    request = view.request
    data = {"request_id": request.id, "tier": view.tier}
    if view.kind == "review":
        return [
            execute("confirm", "Confirm", data, "positive"),
            execute("reverse", "Reverse", data, "destructive"),
        ]
    actions = [
        execute("approve", "Approve", data, "positive"),
        reject_action(request, data),
        _modify(request, data),
    ]
    if offered(request):
        actions.append(_allow_similar(request, data, similar or prefilled(request)))
    if request.question or request.response_schema:
        actions.insert(0, _respond(request, data))
    return actions


def _allow_similar(request: ApprovalRequest, data: Mapping[str, Any], form: SimilarForm) -> Element:
    """Approve, and approve requests like this one in the clicker's name for a while: the
    form bot.core.similar prefills, checked there when `allow_similar` is clicked."""
    action = request.current_action

    def text(input_id: str, title: str, value: str, **more: Any) -> Element:
        field: Element = {
            "type": "Input.Text",
            "id": input_id,
            "label": title,
            "maxLength": MAX_INPUT,
            **more,
        }
        if value:
            field["value"] = value
        return field

    body: list[Element] = [
        runs(
            ("Approves this item and, until the grant ends, every ", {}),
            (clip(action.kind, 80), {"weight": "Bolder"}),
            (" request of ", {}),
            (clip(request.agent_id, 80), {"weight": "Bolder"}),
            (
                f" that needs one approval, is at most {form.max_risk} risk and matches the "
                f"condition, as your vote (channel {STANDING_CHANNEL}).",
                {},
            ),
        ),
        text(
            "when",
            "Condition (CEL, like a routing rule)",
            form.when,
            isMultiline=True,
            placeholder="Leave empty for every such request.",
        ),
        text(
            "ttl",
            "For how long (30m, 2h, 1d: at most 30d)",
            form.ttl,
            isRequired=True,
            errorMessage="Say for how long, such as 2h.",
        ),
        text(
            "max_uses",
            "At most this many uses",
            form.max_uses,
            isRequired=True,
            errorMessage="Say how many uses, such as 10.",
        ),
        text(
            "reason",
            "Reason (shown with every use)",
            form.reason,
            isMultiline=True,
            isRequired=True,
            errorMessage="Say why: the reason is shown with every use.",
        ),
    ]
    if request.risk is Risk.HIGH:
        body.append(
            {
                "type": "Input.Toggle",
                "id": "allow_high",
                "title": "Allow high risk (top tier only)",
                "valueOn": "on",
                "valueOff": "off",
                "value": "on" if form.allow_high else "off",
            }
        )
    # The risk the grant covers is the item's own; it travels with the click.
    submit = execute(
        ALLOW_SIMILAR,
        "Approve + allow similar",
        {**data, "max_risk": form.max_risk},
        "positive",
    )
    return show_card("Approve + allow similar…", body, [submit])


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


def reject_action(
    request: ApprovalRequest, data: Mapping[str, Any], option_id: str = REJECT_OPTION
) -> Element:
    """Reject at once, or with a reason picked from the request's `reject_options`."""
    if not request.reject_options:
        return execute("reject", "Reject", data, "destructive")
    pick: Element = {
        "type": "Input.ChoiceSet",
        "id": option_id,
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
    """The full context as JSON, section by section, clipped to `budget` characters in all."""
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
    if view.amount:
        summary += f" ({view.amount})"
    kind = view.kind
    if kind == "approval":
        text = f"Approval needed ({request.risk.value} risk): {summary}"
    elif kind == "review":
        text = f"Review: {summary}"
    elif kind == "escalated":
        text = f"Escalated to {request.tier}: {summary}"
    else:
        text = f"{outcome_words(view)[1]}: {summary}"
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


def reminder_card(view: CardView, found: Sequence[Mention]) -> Element:
    """A nudge about a card still waiting, in the card's own first words: what, how much,
    who must still decide and what the deadline will do. `found` are @-mentioned in it."""
    request = view.request
    who = "".join(f"{m.text} " for m in found)
    body: list[Element] = [
        text_block(f"⏰ {who}still waiting for your verdict:", weight="Bolder"),
        verbatim(request.current_action.summary, MAX_SUMMARY, weight="Bolder", size="Medium"),
        {"type": "FactSet", "facts": key_facts(view)},
    ]
    if view.who_decides:
        body.append(verbatim(f"👥 {view.who_decides}", MAX_TEXT))
    if view.deadline is not None:
        body.append(text_block(f"⏰ {view.deadline.sentence(stamp(view.deadline.at))}"))
    built = adaptive_card(body, reminder_summary(view))
    if view.inbox_url:
        built["actions"] = [
            {"type": "Action.OpenUrl", "title": "Open in inbox", "url": view.inbox_url}
        ]
    if found:
        built["msteams"] = {"entities": mention_entities(found)}
    return built


def reminder_summary(view: CardView) -> str:
    """The reminder's notification line (plain text: no reader's time zone to write in)."""
    summary = clip(view.request.current_action.summary, 150)
    amount = f" ({view.amount})" if view.amount else ""
    return f"⏰ Still waiting for a verdict on “{summary}”{amount}"


def alert_card(alert: Alert, dashboard_url: str | None = None) -> Element:
    """A warning sign raised or cleared, for the alerts channel."""
    facts = [{"title": str(k), "value": str(v)} for k, v in alert.figures.items()]
    body: list[Element] = [
        banner(alert.title, "warning" if alert.active else "good"),
        verbatim(alert.message, MAX_TEXT, isSubtle=not alert.active),
    ]
    if facts:
        body.append({"type": "FactSet", "facts": facts})
    built = adaptive_card(body, f"{alert.title}: {alert.message}")
    if dashboard_url:
        built["actions"] = [
            {"type": "Action.OpenUrl", "title": "Open the dashboard", "url": dashboard_url}
        ]
    return built
