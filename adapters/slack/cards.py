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
    code,
    date,
    escape,
    mention,
    pretty_json,
)
from bot.core.answers import choices, wants_text
from bot.core.domain import Alert, ApprovalRequest, ReviewStatus, Status, Verdict, Vote
from bot.core.views import CardView

Block = dict[str, Any]

APPROVE = "signoff_approve"
REJECT = "signoff_reject"
MODIFY = "signoff_modify"
DETAILS = "signoff_details"
CONFIRM = "signoff_confirm"
REVERSE = "signoff_reverse"
RESPOND = "signoff_respond"
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
_OUTCOME = {
    Status.APPROVED: ("✅", "Approved"),
    Status.MODIFIED: ("✏️", "Approved with changes"),
    Status.REJECTED: ("❌", "Rejected"),
    Status.EXPIRED: ("⌛", "Expired"),
    Status.CANCELLED: ("🚫", "Cancelled by the agent"),
    Status.REVERSED: ("↩️", "Reversed"),
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

    `ping` puts an @-mention of the tier's Slack reviewers in the notification text (used
    when the card is first posted; edits never notify anyone).
    """
    request = view.request
    kind = view.kind
    blocks: list[Block] = [header(_headline(request, kind))]
    banner = _banner(view, kind)
    if banner:
        blocks.append(section(banner))
    blocks.append(facts(request, view.tier_chain))
    blocks += _context_sections(request)
    blocks.append(section(_payload_text(request)))
    if request.votes:
        blocks.append(section(votes_text(request.votes)))
    blocks.append(_footer(view))
    if kind == "approval":
        elements = [
            button(APPROVE, "Approve", request.id, "primary"),
            button(REJECT, "Reject", request.id, "danger"),
            button(MODIFY, "Modify", request.id),
            button(DETAILS, "Details", request.id),
        ]
        if asks(request):
            elements.insert(0, button(RESPOND, "Answer", request.id, "primary"))
            elements[1].pop("style", None)
        blocks.append({"type": "actions", "elements": elements})
    elif kind == "review":
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    button(CONFIRM, "Confirm", request.id, "primary"),
                    button(REVERSE, "Reverse", request.id, "danger"),
                    button(DETAILS, "Details", request.id),
                ],
            }
        )
    text = _fallback(request, kind)
    if ping and kind in ("approval", "review"):
        pings = " ".join(slack_mentions(view.mentions))
        text = f"{pings} {text}" if pings else text
    return SlackMessage(clip(text, MAX_TEXT), blocks)


def _headline(request: ApprovalRequest, kind: str) -> str:
    summary = request.current_action.summary
    if kind == "approval":
        return f"{_RISK_ICON.get(request.risk.value, '')} Approval needed: {summary}"
    if kind == "review":
        return f"👀 Review: {summary}"
    if kind == "escalated":
        return f"⤴️ Escalated: {summary}"
    icon, label = _outcome(request)
    return f"{icon} {label}: {summary}"


def _outcome(request: ApprovalRequest) -> tuple[str, str]:
    if request.review_status is ReviewStatus.CONFIRMED:
        return "👍", "Confirmed"
    return _OUTCOME.get(request.status, ("•", request.status.value))


def _fallback(request: ApprovalRequest, kind: str) -> str:
    summary = escape(request.current_action.summary)
    if kind == "approval":
        return f"Approval needed ({request.risk.value} risk): {summary}"
    if kind == "review":
        return f"Review needed: {summary}"
    if kind == "escalated":
        return f"Escalated to {escape(request.tier or '')}: {summary}"
    return f"{_outcome(request)[1]}: {summary}"


def _banner(view: CardView, kind: str) -> str | None:
    request = view.request
    if kind == "escalated":
        note = view.note or f"Escalated to {request.tier}"
        return (
            f"⤴️ *{escape(note)}.* No verdict was given at tier *{escape(view.tier)}* in time; "
            f"the item now waits at tier *{escape(request.tier or '')}*."
        )
    if kind == "review":
        return (
            f"👀 *After-the-fact review.* The agent already went ahead (lane "
            f"*{request.lane.value}*). *Confirm* if that was right; *Reverse* tells the agent "
            "to undo it."
        )
    if kind == "final":
        return outcome_text(request)
    return None


def outcome_text(request: ApprovalRequest) -> str:
    """One line saying how the item ended, by whom and when."""
    icon, label = _outcome(request)
    deciders: Sequence[Vote]
    if request.review_status is ReviewStatus.CONFIRMED:
        deciders = [v for v in request.votes if v.verdict is Verdict.CONFIRM]
    elif request.status is Status.REVERSED:
        deciders = [v for v in request.votes if v.verdict is Verdict.REVERSE]
    elif request.status is Status.REJECTED:
        deciders = [v for v in request.votes if v.verdict is Verdict.REJECT]
    elif request.status in (Status.APPROVED, Status.MODIFIED):
        deciders = request.approvals_for_current_action()
    else:
        deciders = []
    line = f"{icon} *{label}*"
    if deciders:
        line += " by " + ", ".join(escape(v.name) for v in deciders)
    elif request.ended_by_stop:
        line += " — the agent was stopped, which ended this item without a verdict"
    elif request.status in (Status.EXPIRED, Status.REJECTED):
        line += " — no verdict before the last tier's deadline"
    if request.decided_at is not None:
        line += f" · {date(request.decided_at)}"
    last_reason = next((v.rationale for v in reversed(deciders) if v.rationale), None)
    if last_reason:
        line += f"\n> {escape(last_reason)}"
    return clip(line, MAX_TEXT)


def facts(request: ApprovalRequest, tier_chain: Sequence[str] = ()) -> Block:
    """The ten fields a reviewer reads first (a section holds at most ten)."""
    tier = request.tier or "—"
    if request.tier and request.tier in tier_chain:
        tier = f"{request.tier} ({tier_chain.index(request.tier) + 1} of {len(tier_chain)})"
    amount = "—"
    if request.amount:
        amount = f"{request.amount:,.2f} {request.currency}".strip()
    approvals = len(request.approvals_for_current_action())
    values = [
        ("Agent", escape(request.agent_id)),
        ("Lane", request.lane.value),
        ("Risk", f"{_RISK_ICON.get(request.risk.value, '')} {request.risk.value}"),
        ("Rules fired", escape(", ".join(request.reasons)) or "—"),
        ("Confidence", f"{request.confidence:.0%}"),
        ("Amount", escape(amount)),
        ("Tier", escape(tier)),
        ("Approvals", f"{approvals} of {request.approvals_required}"),
        ("Deadline", date(request.deadline_at) if request.deadline_at else "—"),
        ("Requested by", f"`{escape(request.requested_by)}`" if request.requested_by else "—"),
    ]
    return {
        "type": "section",
        "fields": [mrkdwn(f"*{name}*\n{value}", MAX_FIELD) for name, value in values],
    }


def _context_sections(request: ApprovalRequest) -> list[Block]:
    context = request.context
    found: list[Block] = []
    summary, goal = context.get("summary"), context.get("goal")
    if summary or goal:
        text = "*Context*"
        if summary:
            text += f"\n{escape(as_text(summary))}"
        if goal:
            text += f"\n*Goal:* {escape(as_text(goal))}"
        found.append(section(text))
    recommendation, alternatives = context.get("recommendation"), context.get("alternatives")
    if recommendation or alternatives:
        text = ""
        if recommendation:
            text += f"*Agent recommends*\n{escape(as_text(recommendation))}\n"
        if alternatives:
            items = alternatives if isinstance(alternatives, list) else [alternatives]
            text += "*Alternatives*\n" + "\n".join(f"• {escape(as_text(a))}" for a in items)
        found.append(section(text.strip()))
    failure = context.get("failure_reason")
    if failure:
        found.append(section(f"*Why the agent asked*\n{escape(as_text(failure))}"))
    return found


def _payload_text(request: ApprovalRequest) -> str:
    action = request.current_action
    title = f"*Action* `{escape(action.kind)}`"
    if request.modified_action is not None:
        title += " — *payload edited by a reviewer*"
    return f"{title}\n" + code(pretty_json(dict(action.payload)), MAX_TEXT - len(title) - 1)


def votes_text(votes: Sequence[Vote]) -> str:
    lines = ["*Votes*"]
    for vote in votes:
        line = f"{_VERDICT_ICON.get(vote.verdict, '•')} *{vote.verdict.value}* by "
        line += f"{escape(vote.name)} · {date(vote.at)}"
        if vote.rationale:
            line += f" — “{escape(vote.rationale)}”"
        lines.append(line)
    return clip("\n".join(lines), MAX_TEXT)


def _footer(view: CardView) -> Block:
    elements: list[dict[str, Any]] = []
    pings = slack_mentions(view.mentions)
    if pings and view.kind in ("approval", "review"):
        elements.append(mrkdwn("Reviewers: " + " ".join(pings), MAX_FIELD))
    if view.inbox_url:
        elements.append(mrkdwn(f"<{view.inbox_url}|Full context in the web inbox>", MAX_FIELD))
    elements.append(mrkdwn(f"`{view.request.id}`", MAX_FIELD))
    return {"type": "context", "elements": elements[:MAX_CONTEXT_ELEMENTS]}


def reminder_text(view: CardView) -> str:
    """A thread reply nudging the tier's reviewers."""
    request = view.request
    pings = "".join(f"{m} " for m in slack_mentions(view.mentions))
    due = f" — due {date(request.deadline_at)}" if request.deadline_at else ""
    summary = escape(request.current_action.summary)
    return clip(f"⏰ {pings}Still waiting for a verdict: *{summary}*{due}", MAX_TEXT)


# -- modals --------------------------------------------------------------------------------


def details_modal(request: ApprovalRequest, inbox_url: str | None = None) -> dict[str, Any]:
    """Everything the agent sent, as far as 50 blocks allow, then a link to the inbox."""
    blocks: list[Block] = [header(request.current_action.summary), facts(request)]
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


def pending_text(
    requests: Sequence[ApprovalRequest], link: Callable[[str], str | None], total: int
) -> str:
    """The `/signoff pending` answer: what awaits this reviewer, oldest deadline first."""
    if not requests:
        return "Nothing is waiting for you. 🎉"
    lines = [f"*{total} item{'s' if total != 1 else ''} waiting for you*"]
    for request in requests:
        url = link(request.id)
        summary = escape(request.current_action.summary)
        name = f"<{url}|{summary}>" if url else summary
        due = f" · due {date(request.deadline_at)}" if request.deadline_at else ""
        kind = "review" if request.status is not Status.PENDING else request.risk.value
        lines.append(
            f"{_RISK_ICON.get(request.risk.value, '•')} {name} — {escape(request.agent_id)} · "
            f"{kind} · tier {escape(request.tier or '—')}{due}"
        )
    text = "\n".join(lines)
    if len(text) > MAX_TEXT:
        text = clip(text, MAX_TEXT - 60).rsplit("\n", 1)[0] + "\n…and more in the web inbox."
    elif total > len(requests):
        text += f"\n…and {total - len(requests)} more in the web inbox."
    return text


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
