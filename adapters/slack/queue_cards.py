"""The Slack message of a tier's queue card (`bot.engine.queue_cards`).

It @-mentions the tier's Slack reviewers and lists what waits at the tier, oldest first,
one line per item linked to its inbox page (where it can be decided now), packed into as
few sections as Slack's block limits allow; whatever does not fit is counted. Closed, it
says that every item has its own card and lists nothing.
"""

from __future__ import annotations

from adapters.slack._blocks import (
    MAX_BLOCKS,
    MAX_FIELD,
    MAX_TEXT,
    Block,
    SlackMessage,
    header,
    mrkdwn,
    section,
)
from adapters.slack._mrkdwn import clip, escape
from bot.core.domain import ApprovalRequest
from bot.core.views import QueueView

MAX_SUMMARY = 60
# Header, introduction, "and N more" and footer leave this many sections for the list.
MAX_LIST_SECTIONS = MAX_BLOCKS - 4
_RISK_ICON = {"low": "🟢", "medium": "🟠", "high": "🔴"}


def queue_message(view: QueueView) -> SlackMessage:
    """The queue card as it should look now."""
    card = view.card
    tier = escape(card.tier)
    who = " ".join(
        f"<@{reviewer.split(':', 1)[1]}>"
        for reviewer in view.mentions
        if reviewer.startswith("slack:")
    )
    if view.closed:
        blocks: list[Block] = [
            header(f"✅ Queue at {card.tier} handled"),
            section(f"Every item waiting at tier *{tier}* now has its own card in this channel."),
        ]
        text = f"Queue at {card.tier} handled: every item has its own card"
    else:
        count = view.waiting
        noun = "item waits" if count == 1 else "items wait"
        blocks = [
            header(f"{count} {noun} at {card.tier}"),
            section(
                clip(
                    f"{who} *{count}* {noun} at tier *{tier}*, oldest first. Their own cards "
                    "follow as fast as Slack allows; each can be decided from its card or, "
                    "right now, from its inbox page below.",
                    MAX_TEXT,
                )
            ),
        ]
        sections, listed = _list(view)
        blocks += sections
        more = count - listed
        if more > 0:
            blocks.append(
                {
                    "type": "context",
                    "elements": [mrkdwn(f"…and {more} more in the web inbox.", MAX_FIELD)],
                }
            )
        text = f"{count} {noun} at {card.tier}"
    blocks.append({"type": "context", "elements": [mrkdwn(f"Queue `{card.id}`", MAX_FIELD)]})
    return SlackMessage(clip(text, MAX_TEXT), blocks)


def _list(view: QueueView) -> tuple[list[Block], int]:
    """Sections holding one line per item, each section under Slack's 3,000 characters."""
    sections: list[Block] = []
    lines: list[str] = []
    size = 0
    listed = 0
    for request in view.items:
        line = _line(view, request)
        if size + len(line) + 1 > MAX_TEXT:
            if len(sections) + 1 >= MAX_LIST_SECTIONS:
                break
            sections.append(section("\n".join(lines)))
            lines, size = [], 0
        lines.append(line)
        size += len(line) + 1
        listed += 1
    if lines:
        sections.append(section("\n".join(lines)))
    return sections, listed


def _line(view: QueueView, request: ApprovalRequest) -> str:
    summary = escape(clip(request.current_action.summary, MAX_SUMMARY))
    link = view.link(request.id)
    name = f"<{link}|{summary}>" if link else summary
    return f"{_RISK_ICON.get(request.risk.value, '•')} {name}"
