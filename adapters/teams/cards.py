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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from adapters.teams._card_parts import (
    details,
    rationale_input,
    verdict_actions,
)
from adapters.teams._elements import (
    DETAILS_BUDGETS,
    EMPTY,
    MAX_CHANGES,
    MAX_FIELD,
    MAX_FIELDS,
    MAX_LIST_ITEMS,
    MAX_RATIONALE,
    MAX_SUMMARY,
    MAX_TEXT,
    MAX_VOTES_SHOWN,
    RISK_ICON,
    Element,
    Tone,
    action_set,
    adaptive_card,
    as_text,
    banner,
    clip,
    confidence,
    fits,
    label,
    reviewer_name,
    runs,
    show_card,
    stamp,
    teams_reviewers,
    text_block,
    verbatim,
)
from bot.core.domain import Alert, ApprovalRequest, Verdict, Vote, readable
from bot.core.similar import SimilarForm
from bot.core.views import CardView
from bot.core.wording import payload_changes

__all__ = [
    "Mention",
    "alert_card",
    "below",
    "card",
    "changes",
    "fallback_text",
    "first_screen",
    "headline",
    "key_facts",
    "mention_block",
    "mention_entities",
    "mentions",
    "outcome_words",
    "payload_fields",
    "reasons",
    "recommendation",
    "reminder_card",
    "reminder_summary",
]


_VERDICT_WORDS = {
    Verdict.APPROVE: ("✅", "approved"),
    Verdict.REJECT: ("❌", "rejected"),
    Verdict.MODIFY: ("✏️", "approved with changes"),
    Verdict.CONFIRM: ("👍", "confirmed"),
    Verdict.REVERSE: ("↩️", "reversed"),
    Verdict.RESPOND: ("💬", "answered"),
}
# Context keys shown under the payload; everything is in Details. The recommendation is
# on the first screen.
_FACE_CONTEXT = (
    ("summary", "Context"),
    ("alternatives", "Alternatives"),
    ("failure_reason", "Why the agent stopped"),
)


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
        body.append(rationale_input(view.request, kind))
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
    if advice in EMPTY:
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
        if value in EMPTY:
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
