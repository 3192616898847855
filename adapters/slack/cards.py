"""Block Kit for Signoff in Slack: cards, the App Home and `/signoff pending`.

Pure functions from domain values to JSON-ready dicts; the ids they use are CONTRACT
section 8. Every text object is clipped to Slack's limits (3,000 characters for a section,
2,000 for a field, 150 for a header, 50 blocks a message) and the full context stays one
click away in the web inbox.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from adapters.slack._blocks import (
    ALLOW_SIMILAR,
    APPROVE,
    CONFIRM,
    DETAILS,
    DETAILS_CALLBACK,
    MAX_BLOCKS,
    MAX_CONTEXT_ELEMENTS,
    MAX_FIELD,
    MAX_HEADER,
    MAX_INPUT,
    MAX_TEXT,
    MODIFIED_PAYLOAD,
    MODIFY,
    RATIONALE,
    REJECT,
    REJECT_OPTION,
    RESPOND,
    RESPONSE,
    REVERSE,
    VERDICT_ACTIONS,
    VERDICT_CALLBACK,
    Block,
    SlackMessage,
    button,
    header,
    mrkdwn,
    plain,
    section,
)
from adapters.slack._first_screen import (
    asks,
    decision_text,
    first_screen,
    headline,
    outcome_text,
    value_text,
    votes_text,
)
from adapters.slack._mrkdwn import as_text, clip, escape, mention, time_of_day
from adapters.slack.modals import (
    details_modal,
    editable_payload,
    verdict_modal,
)
from bot.core.domain import Alert, ApprovalRequest
from bot.core.similar import offered
from bot.core.views import CardView
from bot.core.wording import outcome

__all__ = [
    "ALLOW_SIMILAR",
    "APPROVE",
    "CONFIRM",
    "DETAILS",
    "DETAILS_CALLBACK",
    "HOME_SHOWN",
    "MAX_BLOCKS",
    "MAX_CONTEXT_ELEMENTS",
    "MAX_FIELD",
    "MAX_HEADER",
    "MAX_INPUT",
    "MAX_TEXT",
    "MODIFIED_PAYLOAD",
    "MODIFY",
    "PENDING_SHOWN",
    "QUEUE_BLOCK",
    "RATIONALE",
    "REJECT",
    "REJECT_OPTION",
    "RESPOND",
    "RESPONSE",
    "REVERSE",
    "VERDICT_ACTIONS",
    "VERDICT_CALLBACK",
    "Block",
    "SlackMessage",
    "alert_message",
    "asks",
    "button",
    "buttons",
    "card_message",
    "decision_text",
    "details_modal",
    "editable_payload",
    "first_screen",
    "header",
    "headline",
    "home_view",
    "mrkdwn",
    "outcome_text",
    "payload_text",
    "pending_message",
    "plain",
    "queue_blocks",
    "reminder_text",
    "section",
    "slack_mentions",
    "verdict_modal",
    "votes_text",
]


def slack_mentions(reviewers: Sequence[str]) -> list[str]:
    return [m for m in (mention(r) for r in reviewers) if m]


def card_message(view: CardView, *, ping: bool = False) -> SlackMessage:
    """The card for one copy of a request, as it should look now.

    The first screen decides: the header (what the agent wants to do, for how much), then
    why a person sees it, the agent's recommendation, who must decide and what the deadline
    does, then the buttons. The payload, the votes and the footer come after. `ping` puts
    an @-mention of the tier's Slack reviewers in the notification text (used when the card
    is first posted; edits never notify anyone).
    """
    request = view.request
    kind = view.kind
    blocks = first_screen(view)
    blocks += buttons(view)
    blocks += _context_sections(request)
    blocks.append(section(payload_text(request)))
    if request.votes:
        blocks.append(section(votes_text(request.votes)))
    blocks.append(_footer(view))
    text = _fallback(view)
    if ping and kind in ("approval", "review"):
        pings = " ".join(slack_mentions(view.mentions))
        text = f"{pings} {text}" if pings else text
    return SlackMessage(clip(text, MAX_TEXT), blocks)


def buttons(view: CardView, block_id: str | None = None) -> list[Block]:
    """The card's buttons (none once there is nothing to decide here); the value of each
    is the request id, so the same buttons work on a card, in a DM and on the App Home.
    "Approve + allow similar…" is offered where a standing approval could cover items like
    this one (one approval, escalate lane); whether the clicker may grant is checked then."""
    request = view.request
    if view.kind == "approval":
        elements = [
            button(APPROVE, "Approve", request.id, "primary"),
            button(REJECT, "Reject", request.id, "danger"),
            button(MODIFY, "Modify", request.id),
            button(DETAILS, "Details", request.id),
        ]
        if offered(request):
            elements.insert(3, button(ALLOW_SIMILAR, "Approve + allow similar…", request.id))
        if asks(request):
            elements.insert(0, button(RESPOND, "Answer", request.id, "primary"))
            elements[1].pop("style", None)
    elif view.kind == "review":
        elements = [
            button(CONFIRM, "Confirm", request.id, "primary"),
            button(REVERSE, "Reverse", request.id, "danger"),
            button(DETAILS, "Details", request.id),
        ]
    else:
        return []
    block: Block = {"type": "actions", "elements": elements}
    if block_id:
        block["block_id"] = block_id[:255]
    return [block]


def _fallback(view: CardView) -> str:
    request = view.request
    summary = escape(request.current_action.summary)
    if view.amount:
        summary += f" ({escape(view.amount)})"
    kind = view.kind
    if kind == "approval":
        return f"Approval needed: {summary}"
    if kind == "review":
        return f"Check needed: {summary}"
    if kind == "escalated":
        return f"Moved to tier {escape(request.tier or '')}: {summary}"
    return f"{outcome(request).label}: {summary}"


def _context_sections(request: ApprovalRequest) -> list[Block]:
    context = request.context
    lines: list[str] = []
    summary, goal = context.get("summary"), context.get("goal")
    if summary:
        lines.append(f"*Context:* {escape(as_text(summary))}")
    if goal:
        lines.append(f"*Goal:* {escape(as_text(goal))}")
    alternatives = context.get("alternatives")
    if alternatives:
        items = alternatives if isinstance(alternatives, list) else [alternatives]
        lines.append("*Alternatives*\n" + "\n".join(f"• {escape(as_text(a))}" for a in items))
    failure = context.get("failure_reason")
    if failure:
        lines.append(f"*Why the agent asked:* {escape(as_text(failure))}")
    return [section(clip("\n".join(lines), MAX_TEXT))] if lines else []


_SHOWN_FIELDS = 25


def payload_text(request: ApprovalRequest) -> str:
    """The action's payload as labelled lines: `key: value`, nested values as compact JSON
    (the whole payload is in the Details modal)."""
    action = request.current_action
    title = f"*Action* `{escape(action.kind)}`"
    if request.modified_action is not None:
        title += " — *as edited by a reviewer*"
    payload = dict(action.payload)
    lines = [title]
    shown = list(payload.items())[:_SHOWN_FIELDS]
    lines += [f"*{escape(str(key))}:* {value_text(value, 300)}" for key, value in shown]
    if not payload:
        lines.append("_No payload._")
    elif len(payload) > _SHOWN_FIELDS:
        lines.append(f"…and {len(payload) - _SHOWN_FIELDS} more fields (Details)")
    text = "\n".join(lines)
    if len(text) > MAX_TEXT:
        text = clip(text, MAX_TEXT - 40).rsplit("\n", 1)[0] + "\n…the rest under Details"
    return text


def _footer(view: CardView) -> Block:
    request = view.request
    elements: list[dict[str, Any]] = []
    pings = slack_mentions(view.mentions)
    if pings and view.kind in ("approval", "review"):
        elements.append(mrkdwn("Reviewers: " + " ".join(pings), MAX_FIELD))
    about = f"Agent `{escape(request.agent_id)}` · {request.risk.value} risk"
    if request.requested_by:
        about += f" · asked by `{escape(request.requested_by)}`"
    elements.append(mrkdwn(about, MAX_FIELD))
    if view.inbox_url:
        elements.append(mrkdwn(f"<{view.inbox_url}|Full context in the web inbox>", MAX_FIELD))
    elements.append(mrkdwn(f"`{request.id}`", MAX_FIELD))
    return {"type": "context", "elements": elements[:MAX_CONTEXT_ELEMENTS]}


def reminder_text(view: CardView) -> str:
    """A thread reply nudging the tier's reviewers, with what the deadline will do."""
    pings = "".join(f"{m} " for m in slack_mentions(view.mentions))
    what = escape(view.request.current_action.summary)
    if view.amount:
        what += f" — {escape(view.amount)}"
    text = f"⏰ {pings}Still waiting for a verdict: *{what}*"
    if view.deadline is not None:
        text += f". {view.deadline.sentence(time_of_day(view.deadline.at))}."
    return clip(text, MAX_TEXT)


HOME_SHOWN = 20
PENDING_SHOWN = 15
QUEUE_BLOCK = "signoff_item:"


def queue_blocks(views: Sequence[CardView], total: int, shown: int) -> list[Block]:
    """A reviewer's queue, oldest deadline first: each item with the first-screen words of
    its card and the same buttons, so a click works as it does on the card."""
    if not views:
        return [section("Nothing is waiting for you. 🎉")]
    blocks: list[Block] = []
    for view in views[:shown]:
        title = escape(headline(view))
        if view.inbox_url:
            title = f"<{view.inbox_url}|{title}>"
        blocks.append(section(clip(f"*{title}*\n{decision_text(view)}", MAX_TEXT)))
        blocks += buttons(view, block_id=f"{QUEUE_BLOCK}{view.request.id}")
        blocks.append({"type": "divider"})
    more = total - min(len(views), shown)
    if more > 0:
        blocks.append(
            {"type": "context", "elements": [mrkdwn(f"…and {more} more in the web inbox.")]}
        )
    return blocks


def _count(total: int) -> str:
    return f"{total} item{'s' if total != 1 else ''} waiting for you"


def home_view(views: Sequence[CardView], total: int) -> dict[str, Any]:
    """The App Home tab "Waiting for you" (`views.publish`, at most 100 blocks)."""
    blocks: list[Block] = [header("Waiting for you")]
    if views:
        blocks.append(
            {
                "type": "context",
                "elements": [mrkdwn(f"{_count(total)}, oldest deadline first.")],
            }
        )
    blocks += queue_blocks(views, total, HOME_SHOWN)
    return {"type": "home", "blocks": blocks}


def pending_message(views: Sequence[CardView], total: int) -> SlackMessage:
    """The `/signoff pending` answer: the same queue as the App Home (50 blocks a message)."""
    if not views:
        return SlackMessage("Nothing is waiting for you. 🎉", queue_blocks(views, total, 0))
    blocks = [section(f"*{_count(total)}*"), *queue_blocks(views, total, PENDING_SHOWN)]
    return SlackMessage(_count(total), blocks)


def alert_message(alert: Alert, dashboard_url: str | None = None) -> SlackMessage:
    """A warning sign raised or cleared, for the alerts channel: what, the figures, where to
    look."""
    icon = "⚠️" if alert.active else "✅"
    figures = "  ·  ".join(f"{escape(k)}: {escape(str(v))}" for k, v in alert.figures.items())
    blocks: list[Block] = [
        header(f"{icon} {alert.title}"),
        section(escape(alert.message) if alert.active else f"~{escape(alert.message)}~"),
    ]
    context = [mrkdwn(figures)] if figures else []
    if dashboard_url:
        context.append(mrkdwn(f"<{dashboard_url}|Open the dashboard>"))
    if context:
        blocks.append({"type": "context", "elements": context})
    # The notification text is mrkdwn too: a reviewer's name in the message must not ping.
    return SlackMessage(
        text=f"{icon} {escape(alert.title)}: {escape(alert.message)}", blocks=blocks
    )
