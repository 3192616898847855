"""Block Kit for Signoff in Slack: cards, the details modal and the verdict modal.

Pure functions from domain values to JSON-ready dicts; the ids they use are CONTRACT
section 8. Every text object is clipped to Slack's limits (3,000 characters for a section,
2,000 for a field, 150 for a header, 50 blocks a message) and the full context stays one
click away in the web inbox.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from adapters.slack._mrkdwn import (
    as_text,
    chunks,
    clip,
    date,
    escape,
    mention,
    pretty_json,
    time_of_day,
)
from bot.core.answers import choices, wants_text
from bot.core.domain import Alert, ApprovalRequest, ReasonText, Verdict, Vote
from bot.core.similar import offered
from bot.core.views import CardView
from bot.core.wording import outcome, payload_changes

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

_RISK_ICON = {"low": "🟢", "medium": "🟠", "high": "🔴"}
_VERDICT_ICON = {
    Verdict.APPROVE: "✅",
    Verdict.REJECT: "❌",
    Verdict.MODIFY: "✏️",
    Verdict.CONFIRM: "👍",
    Verdict.REVERSE: "↩️",
    Verdict.RESPOND: "💬",
}


@dataclass(frozen=True)
class SlackMessage:
    """A message body: `text` is the notification and screen-reader fallback."""

    text: str
    blocks: list[Block]


# -- small builders ------------------------------------------------------------------------


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


# -- cards ---------------------------------------------------------------------------------


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


def first_screen(view: CardView) -> list[Block]:
    """The header and the section a reviewer decides from, before any button."""
    return [header(headline(view)), section(decision_text(view))]


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


def headline(view: CardView) -> str:
    """What the agent wants to do and for how much, marked with where the item stands."""
    request = view.request
    what = request.current_action.summary
    if view.amount:
        what = f"{what} — {view.amount}"
    kind = view.kind
    if kind == "approval":
        return f"{_RISK_ICON.get(request.risk.value, '•')} {what}"
    if kind == "review":
        return f"👀 Check: {what}"
    if kind == "escalated":
        return f"⤴️ Moved to tier {request.tier}: {what}"
    ended = outcome(request)
    return f"{ended.icon} {ended.label}: {what}"


def decision_text(view: CardView) -> str:
    """The first screen in words: how the item stands, what a modify changed, what the agent
    asks, why a person sees it, the agent's recommendation, who decides, the deadline."""
    request = view.request
    kind = view.kind
    lines: list[str] = []
    if kind == "escalated":
        lines.append(
            f"⤴️ *{escape(view.note or f'Moved to tier {request.tier}')}.* No one decided at "
            f"tier *{escape(view.tier)}* in time; decide it on tier "
            f"*{escape(request.tier or '')}*'s card."
        )
    elif kind == "review":
        lines.append(
            "👀 *Check after the fact.* The agent already went ahead. *Confirm* if that was "
            "right; *Reverse* tells the agent to undo it."
        )
    elif kind == "final":
        lines.append(outcome_text(request))
    lines += _change_lines(request)
    if request.question:
        lines.append(f"❓ *The agent asks:* {escape(clip(request.question, 500))}")
    lines += _reason_lines(view.reasons)
    lines.append(_recommendation(request))
    if kind in ("approval", "review") and view.who_decides:
        lines.append(f"👥 {escape(view.who_decides)}")
    if kind == "approval" and view.deadline is not None:
        lines.append(f"⏰ {view.deadline.sentence(time_of_day(view.deadline.at))}")
    return clip("\n".join(lines), MAX_TEXT)


_SHOWN_REASONS = 5
_SHOWN_CHANGES = 5


def _reason_lines(reasons: Sequence[ReasonText]) -> list[str]:
    if not reasons:
        return []
    lines = ["*Why you see this*"]
    for reason in reasons[:_SHOWN_REASONS]:
        line = f"• *{escape(reason.title)}*"
        if reason.explain:
            line += f" — {escape(reason.explain)}"
        lines.append(clip(line, 400))
    if len(reasons) > _SHOWN_REASONS:
        lines.append(f"• …and {len(reasons) - _SHOWN_REASONS} more (Details)")
    return lines


def _recommendation(request: ApprovalRequest) -> str:
    sure = f"{request.confidence:.0%} confident"
    recommendation = request.context.get("recommendation")
    if recommendation:
        said = escape(clip(as_text(recommendation), 500))
        return f"💡 *Agent recommends:* {said} · {sure}"
    return f"💡 The agent is {sure}"


def _change_lines(request: ApprovalRequest) -> list[str]:
    """A reviewer's modify as old → new, leaf by leaf."""
    if request.modified_action is None:
        return []
    changes = payload_changes(request.action.payload, request.modified_action.payload)
    if not changes:
        return []
    lines = ["✏️ *Changed by a reviewer*"]
    for change in changes[:_SHOWN_CHANGES]:
        old, new = _value(change.old, 200), _value(change.new, 200)
        lines.append(f"• `{escape(change.path)}`: ~{old}~ → *{new}*")
    if len(changes) > _SHOWN_CHANGES:
        lines.append(f"• …and {len(changes) - _SHOWN_CHANGES} more (Details)")
    return lines


def _value(value: Any, limit: int) -> str:
    """A payload value on one line: text as it is, the rest as compact JSON."""
    if value is None:
        return "—"
    return escape(clip(as_text(value), limit))


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


def outcome_text(request: ApprovalRequest) -> str:
    """How the item ended (bot.core.wording), by whom, when, and the last reason given."""
    ended = outcome(request)
    line = f"{ended.icon} *{ended.label}*"
    if ended.deciders:
        line += " by " + ", ".join(escape(n) for n in dict.fromkeys(v.name for v in ended.deciders))
    elif ended.note:
        line += f" — {escape(ended.note)}"
    if request.decided_at is not None:
        line += f" · {date(request.decided_at)}"
    if ended.rationale:
        line += f"\n> {escape(ended.rationale)}"
    return clip(line, MAX_TEXT)


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
    lines += [f"*{escape(str(key))}:* {_value(value, 300)}" for key, value in shown]
    if not payload:
        lines.append("_No payload._")
    elif len(payload) > _SHOWN_FIELDS:
        lines.append(f"…and {len(payload) - _SHOWN_FIELDS} more fields (Details)")
    text = "\n".join(lines)
    if len(text) > MAX_TEXT:
        text = clip(text, MAX_TEXT - 40).rsplit("\n", 1)[0] + "\n…the rest under Details"
    return text


_VOTE_WORDS = {
    Verdict.APPROVE: "Approved",
    Verdict.REJECT: "Rejected",
    Verdict.MODIFY: "Edited and approved",
    Verdict.CONFIRM: "Confirmed",
    Verdict.REVERSE: "Reversed",
    Verdict.RESPOND: "Answered",
}


def votes_text(votes: Sequence[Vote]) -> str:
    lines = ["*Votes*"]
    for vote in votes:
        line = f"{_VERDICT_ICON.get(vote.verdict, '•')} *{_VOTE_WORDS[vote.verdict]}* by "
        line += f"{escape(vote.name)} · {date(vote.at)}"
        if vote.rationale:
            line += f" — “{escape(vote.rationale)}”"
        lines.append(line)
    return clip("\n".join(lines), MAX_TEXT)


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


# -- modals --------------------------------------------------------------------------------


def details_modal(view: CardView) -> dict[str, Any]:
    """The card's first screen, then everything the agent sent as far as 50 blocks allow,
    then a link to the inbox."""
    request, inbox_url = view.request, view.inbox_url
    blocks: list[Block] = first_screen(view)
    truncated = False
    for title, body in _detail_parts(request):
        # Each part gets a few blocks, so one huge part cannot push the others out.
        if len(body) > _PART_BLOCKS:
            body, truncated = body[:_PART_BLOCKS], True
        for index, piece in enumerate(body):
            if len(blocks) >= MAX_BLOCKS - 1:
                truncated = True
                break
            blocks.append(section(f"*{title}*\n{piece}" if index == 0 else piece))
    if truncated:
        where = f"<{inbox_url}|the web inbox>" if inbox_url else "the web inbox"
        blocks.append(section(f"✂️ Shortened to fit Slack. See everything in {where}."))
    return {
        "type": "modal",
        "callback_id": DETAILS_CALLBACK,
        "title": plain("Request details", 24),
        "close": plain("Close", 24),
        "blocks": blocks[:MAX_BLOCKS],
    }


_PART_BLOCKS = 3

_CONTEXT_ORDER = (
    ("summary", "Summary"),
    ("goal", "Goal"),
    ("recommendation", "Recommendation"),
    ("alternatives", "Alternatives"),
    ("conversation", "Conversation"),
    ("actions_attempted", "Actions attempted"),
    ("failure_reason", "Failure reason"),
    ("customer", "Customer"),
    ("transaction", "Transaction"),
    ("policies", "Policies"),
)


def _detail_parts(request: ApprovalRequest) -> list[tuple[str, list[str]]]:
    context = dict(request.context)
    action = request.current_action
    parts: list[tuple[str, Any, Callable[[Any], str]]] = [
        ("Action", f"`{escape(action.kind)}` {escape(action.summary)}", str)
    ]
    for key, title in _CONTEXT_ORDER:
        value = context.pop(key, None)
        render: Callable[[Any], str] = _conversation if key == "conversation" else _render
        parts.append((title, value, render))
    parts += [(escape(key), value, _render) for key, value in context.items()]
    parts.append(("Labels", dict(request.labels), _render))
    parts.append(("Action payload", dict(request.action.payload), _render))
    if request.modified_action is not None:
        parts.append(("Edited payload", dict(request.modified_action.payload), _render))
    if request.votes:
        parts.append(("Votes", votes_text(request.votes).removeprefix("*Votes*\n"), str))
    if request.history:
        moves = [
            f"• {escape(m.from_tier or 'start')} → {escape(m.to_tier)} ({m.reason}) · {date(m.at)}"
            for m in request.history
        ]
        parts.append(("Tier history", "\n".join(moves), str))
    found: list[tuple[str, list[str]]] = []
    for title, value, render in parts:
        if value in (None, "", [], {}):
            continue
        text = render(value)
        budget = MAX_TEXT - len(title) - 4
        if text.startswith("```"):
            inner = text[3:-3]
            pieces = [f"```{piece}```" for piece in chunks(inner, budget - 6)]
        else:
            pieces = list(chunks(text, budget))
        found.append((title, pieces))
    return found


def _render(value: Any) -> str:
    if isinstance(value, str):
        return escape(value)
    if isinstance(value, list) and all(isinstance(v, str | int | float) for v in value):
        return "\n".join(f"• {escape(str(v))}" for v in value)
    return "```" + escape(pretty_json(value)) + "```"


def _conversation(value: Any) -> str:
    if not isinstance(value, list):
        return _render(value)
    lines = []
    for turn in value:
        if isinstance(turn, Mapping):
            who = turn.get("role") or turn.get("author") or turn.get("from") or "?"
            said = turn.get("content") or turn.get("text") or turn.get("message") or ""
            lines.append(f"*{escape(as_text(who))}:* {escape(as_text(said))}")
        else:
            lines.append(escape(as_text(turn)))
    return "\n".join(lines)


_VERDICT_WORDS = {
    Verdict.APPROVE: ("Approve", "Approve request"),
    Verdict.REJECT: ("Reject", "Reject request"),
    Verdict.MODIFY: ("Approve edited", "Modify request"),
    Verdict.CONFIRM: ("Confirm", "Confirm request"),
    Verdict.REVERSE: ("Reverse", "Reverse request"),
    Verdict.RESPOND: ("Send answer", "Answer the question"),
}


def asks(request: ApprovalRequest) -> bool:
    """Whether the agent asked the reviewer something (the card offers an Answer button)."""
    return bool(request.question or request.response_schema)


def editable_payload(payload: Mapping[str, Any]) -> str | None:
    """The payload as JSON that fits a text input (3,000 characters), or None."""
    for indent in (2, None):
        text = pretty_json(dict(payload), indent=indent)
        if len(text) <= MAX_INPUT:
            return text
    return None


def verdict_modal(
    request: ApprovalRequest,
    verdict: Verdict,
    *,
    inbox_url: str | None = None,
    external_id: str | None = None,
) -> dict[str, Any]:
    """The `signoff_verdict` modal: a rationale, and for modify the edited payload."""
    submit, title = _VERDICT_WORDS[verdict]
    summary = (
        f"*{escape(request.current_action.summary)}*\n"
        f"{escape(request.agent_id)} · {request.risk.value} risk · "
        f"{len(request.approvals_for_current_action())} of {request.approvals_required} approvals"
    )
    blocks: list[Block] = [section(summary)]
    if verdict is Verdict.MODIFY:
        current = editable_payload(request.current_action.payload)
        element: dict[str, Any] = {
            "type": "plain_text_input",
            "action_id": MODIFIED_PAYLOAD,
            "multiline": True,
            "max_length": MAX_INPUT,
        }
        hint = "A JSON object. It replaces the action's payload; the agent executes this one."
        if current is not None:
            element["initial_value"] = current
        else:
            hint = "The current payload is too large to edit here; use the web inbox."
            if inbox_url:
                blocks.append(section(f"<{inbox_url}|Edit it in the web inbox>"))
        blocks.append(
            {
                "type": "input",
                "block_id": MODIFIED_PAYLOAD,
                "label": plain("Edited payload (JSON)", 2000),
                "hint": plain(hint, 2000),
                "element": element,
            }
        )
    if verdict is Verdict.RESPOND:
        blocks += _answer_blocks(request)
    if verdict is Verdict.REJECT and request.reject_options:
        blocks.append(
            {
                "type": "input",
                "block_id": REJECT_OPTION,
                "optional": True,
                "label": plain("Reason", 2000),
                "element": {
                    "type": "static_select",
                    "action_id": REJECT_OPTION,
                    "placeholder": plain("Pick the reason", 150),
                    "options": [_option(o) for o in request.reject_options[:100]],
                },
            }
        )
    # Optional where the reason may come from elsewhere (an answer, a picked reject reason);
    # a rationale the rules require is still refused empty when the form is submitted.
    optional = verdict is Verdict.RESPOND or (
        verdict is Verdict.REJECT and bool(request.reject_options)
    )
    blocks.append(
        {
            "type": "input",
            "block_id": RATIONALE,
            "optional": optional,
            "label": plain("Rationale", 2000),
            "hint": plain("Why? It is recorded in the audit trail and sent to the agent.", 2000),
            "element": {
                "type": "plain_text_input",
                "action_id": RATIONALE,
                "multiline": True,
                "max_length": MAX_INPUT,
            },
        }
    )
    view: dict[str, Any] = {
        "type": "modal",
        "callback_id": VERDICT_CALLBACK,
        "private_metadata": json.dumps({"request_id": request.id, "verdict": verdict.value}),
        "title": plain(title, 24),
        "submit": plain(submit, 24),
        "close": plain("Cancel", 24),
        "blocks": blocks,
    }
    if external_id:
        view["external_id"] = external_id[:255]
    return view


def _option(text: str) -> dict[str, Any]:
    return {"text": plain(text, 75), "value": text[:150]}


def _answer_blocks(request: ApprovalRequest) -> list[Block]:
    """The question and the answer input: a pick list for a string `enum`, else text."""
    blocks: list[Block] = []
    if request.question:
        blocks.append(section(f"*The agent asks*\n{escape(request.question)}"))
    picks = choices(request.response_schema)
    element: dict[str, Any]
    if picks is not None:
        element = {
            "type": "static_select",
            "action_id": RESPONSE,
            "placeholder": plain("Pick an answer", 150),
            "options": [_option(p) for p in picks[:100]],
        }
        hint = "Pick one."
    else:
        element = {
            "type": "plain_text_input",
            "action_id": RESPONSE,
            "multiline": True,
            "max_length": MAX_INPUT,
        }
        hint = (
            "Your answer is sent to the agent."
            if wants_text(request.response_schema)
            else "Answer as JSON: "
            + clip(pretty_json(dict(request.response_schema or {}), indent=None), 1800)
        )
    blocks.append(
        {
            "type": "input",
            "block_id": RESPONSE,
            "label": plain("Your answer", 2000),
            "hint": plain(hint, 2000),
            "element": element,
        }
    )
    return blocks


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
