"""The first screen of a Slack card: what the agent wants, how it stands and who decides.

A card, a queue entry and the details modal all open with these words (CardView supplies
them from bot.core.wording), so a reviewer decides from the same text wherever they look.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from adapters.slack._blocks import MAX_TEXT, Block, header, section
from adapters.slack._mrkdwn import as_text, clip, date, escape, time_of_day
from bot.core.domain import ApprovalRequest, ReasonText, Verdict, Vote
from bot.core.views import CardView
from bot.core.wording import outcome, payload_changes

_RISK_ICON = {"low": "🟢", "medium": "🟠", "high": "🔴"}
_VERDICT_ICON = {
    Verdict.APPROVE: "✅",
    Verdict.REJECT: "❌",
    Verdict.MODIFY: "✏️",
    Verdict.CONFIRM: "👍",
    Verdict.REVERSE: "↩️",
    Verdict.RESPOND: "💬",
}


def first_screen(view: CardView) -> list[Block]:
    """The header and the section a reviewer decides from, before any button."""
    return [header(headline(view)), section(decision_text(view))]


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
        old, new = value_text(change.old, 200), value_text(change.new, 200)
        lines.append(f"• `{escape(change.path)}`: ~{old}~ → *{new}*")
    if len(changes) > _SHOWN_CHANGES:
        lines.append(f"• …and {len(changes) - _SHOWN_CHANGES} more (Details)")
    return lines


def value_text(value: Any, limit: int) -> str:
    """A payload value on one line: text as it is, the rest as compact JSON."""
    if value is None:
        return "—"
    return escape(clip(as_text(value), limit))


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


def asks(request: ApprovalRequest) -> bool:
    """Whether the agent asked the reviewer something (the card offers an Answer button)."""
    return bool(request.question or request.response_schema)
