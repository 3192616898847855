"""The Adaptive Card of a tier's queue card in Teams (`bot.engine.queue_cards`).

It @-mentions the tier's Teams reviewers and lists what waits at the tier, oldest first,
one line per item linked to its inbox page (where it can be decided now). Teams refuses
messages over about 28 KB: summaries are shortened first, then the newest items are left to
"and N more". Closed, it says that every item has its own card and lists nothing.
"""

from __future__ import annotations

import json

from adapters.teams._elements import (
    MAX_CARD_BYTES,
    VERSION,
    Element,
    clip,
    teams_reviewers,
    text_block,
)
from adapters.teams.cards import (
    Mention,
    mention_block,
    mention_entities,
)
from bot.core.domain import ApprovalRequest
from bot.core.views import QueueView

_RISK_ICON = {"low": "🟢", "medium": "🟠", "high": "🔴"}
# Items per TextBlock: long lists in one block render slowly in Teams clients.
_PER_BLOCK = 25


def queue_mentions(view: QueueView) -> list[Mention]:
    ids = teams_reviewers(view.mentions)
    return [Mention(f"<at>Reviewer {n}</at>", aad, f"Reviewer {n}") for n, aad in enumerate(ids, 1)]


def queue_card(view: QueueView) -> Element:
    """The queue card as it should look now, within Teams' size limit."""
    shown = len(view.items)
    attempts = [(limit, shown) for limit in (60, 40)]
    attempts += [(30, count) for count in range(shown - 10, 0, -10)]
    for summary_limit, count in attempts:
        built = _card(view, summary_limit, count)
        if len(json.dumps(built, ensure_ascii=False).encode("utf-8")) <= MAX_CARD_BYTES:
            return built
    return _card(view, 30, 0)


def fallback_text(view: QueueView) -> str:
    if view.closed:
        return f"Queue at {view.card.tier} handled: every item has its own card"
    noun = "item waits" if view.waiting == 1 else "items wait"
    return f"{view.waiting} {noun} at {view.card.tier}"


def _card(view: QueueView, summary_limit: int, shown: int) -> Element:
    card = view.card
    found = queue_mentions(view)
    body: list[Element] = []
    if view.closed:
        body.append(text_block(f"✅ Queue at {card.tier} handled", weight="Bolder"))
        body.append(text_block("Every item waiting at this tier now has its own card."))
    else:
        body.append(
            mention_block(
                found,
                f"{fallback_text(view)}, oldest first. Their own cards follow as fast as Teams "
                "allows; each can be decided from its card or, right now, from its inbox page.",
            )
        )
        lines = [_line(view, r, summary_limit) for r in view.items[:shown]]
        for start in range(0, len(lines), _PER_BLOCK):
            body.append(text_block("\n\n".join(lines[start : start + _PER_BLOCK])))
        more = view.waiting - shown
        if more > 0:
            body.append(text_block(f"…and {more} more in the web inbox.", isSubtle=True))
    body.append(text_block(f"Queue {card.id}", isSubtle=True, size="Small"))
    element: Element = {
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": VERSION,
        "fallbackText": fallback_text(view),
        "body": body,
    }
    if found and not view.closed:
        element["msteams"] = {"entities": mention_entities(found)}
    return element


def _line(view: QueueView, request: ApprovalRequest, summary_limit: int) -> str:
    summary = clip(request.current_action.summary, summary_limit).replace("]", ")")
    link = view.link(request.id)
    name = f"[{summary}]({link})" if link else summary
    return f"{_RISK_ICON.get(request.risk.value, '•')} {name}"
