"""Slack mrkdwn helpers: escaping agent text, clipping safely, dates, JSON.

Everything an agent sends is untrusted: escaped, `<!channel>` would ping a whole channel and
`<https://evil|Approve>` would draw a fake link, so every piece of request text goes through
`escape` before it is put in a mrkdwn object.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from bot.core.domain import as_utc, isoformat

ELLIPSIS = "…"
FENCE = "```"


def escape(text: str) -> str:
    """The three characters Slack asks apps to escape in mrkdwn (and nothing else)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _safe_cut(text: str, end: int) -> int:
    """Move `end` back so the cut does not split an entity (`&amp;`) or a `<...>` token."""
    head = text[:end]
    amp = head.rfind("&")
    if amp != -1 and ";" not in head[amp:]:
        end = amp
    head = text[:end]
    if head.rfind("<") > head.rfind(">"):
        end = head.rfind("<")
    return end


def clip(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, ending in an ellipsis when it was cut."""
    if len(text) <= limit:
        return text
    end = _safe_cut(text, max(limit - len(ELLIPSIS), 0))
    return text[:end].rstrip() + ELLIPSIS


def chunks(text: str, size: int) -> Iterator[str]:
    """Split `text` into pieces of at most `size` characters, at line ends where possible."""
    rest = text
    while len(rest) > size:
        end = rest.rfind("\n", size // 2, size)
        end = _safe_cut(rest, end if end != -1 else size)
        if end <= 0:
            end = size
        yield rest[:end]
        rest = rest[end:].lstrip("\n")
    if rest:
        yield rest


def code(text: str, limit: int) -> str:
    """A fenced code block holding (escaped) `text`, the fences included in `limit`."""
    return FENCE + clip(escape(text), limit - 2 * len(FENCE)) + FENCE


def pretty_json(value: Any, *, indent: int | None = 2) -> str:
    separators = (",", ": ") if indent else (",", ":")
    return json.dumps(value, indent=indent, separators=separators, ensure_ascii=False, default=str)


def as_text(value: Any) -> str:
    """A context value as one line of text: strings as they are, the rest as compact JSON."""
    return value if isinstance(value, str) else pretty_json(value, indent=None)


def date(at: datetime | None) -> str:
    """A Slack date token: each reader sees it in their own time zone; ISO as the fallback."""
    if at is None:
        return "—"
    at = as_utc(at)
    return f"<!date^{int(at.timestamp())}^{{date_short_pretty}} {{time}}|{isoformat(at)}>"


def time_of_day(at: datetime) -> str:
    """A deadline's time in each reader's own zone ("5:00 PM, today"); UTC as the fallback
    for clients that cannot draw the token."""
    at = as_utc(at)
    fallback = at.strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(at.timestamp())}^{{time}}, {{date_short_pretty}}|{fallback}>"


def mention(reviewer: str) -> str | None:
    """`<@U123>` for a `slack:U123` reviewer, `<!subteam^S123>` for a `slack:S123` user
    group; None for other platforms."""
    platform, _, user = reviewer.partition(":")
    if platform != "slack" or not user:
        return None
    return f"<!subteam^{user}>" if is_user_group(reviewer) else f"<@{user}>"


def is_user_group(reviewer: str) -> bool:
    """Slack user group ids start with S; member ids with U or W."""
    return reviewer.startswith("slack:S")


def who(reviewer: str | None) -> str:
    """A reviewer or requester for display: a Slack user renders as their name."""
    if not reviewer:
        return "—"
    return mention(reviewer) or f"`{escape(reviewer)}`"
