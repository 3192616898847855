"""The personal queue: what waits for one reviewer, as one Adaptive Card.

A reviewer who writes `pending` in their 1:1 chat with the bot gets this card. Each item
shows its own card's first screen (what the agent wants, the amount, why a person sees it,
the recommendation, who must decide, what the deadline will do) and its verdict buttons:
the same `Action.Execute` verbs and `data` as the item's own card, plus `data.queue`, so
the answer to a click is this queue redrawn with the click's result on top.

All items share one card, so each item's inputs are named `<input>:<request id>`
(`rationale:req_…`, `reject_option:req_…`), which the bot reads before the plain ids. None
is `isRequired`: a click checks every input of the card, and one high-risk item's empty box
must not block another item's button (the bot asks for the missing rationale instead).
Modifying and answering a question need the item's own card or the web inbox.
"""

from __future__ import annotations

from collections.abc import Sequence

from adapters.teams._card_parts import (
    reject_action,
)
from adapters.teams._elements import (
    MAX_INPUT,
    RATIONALE,
    REJECT_OPTION,
    Element,
    Tone,
    action_set,
    adaptive_card,
    banner,
    execute,
    fits,
    text_block,
)
from adapters.teams.cards import (
    first_screen,
    headline,
)
from bot.core.views import CardView

QUEUE = "queue"
"""Set in a queue button's `data`: answer the click with the queue redrawn."""
MAX_QUEUE_ITEMS = 8
MAX_ITEM_SUMMARY = 150


def item_input(name: str, request_id: str) -> str:
    """The id of one item's input on the queue card (`rationale:req_…`)."""
    return f"{name}:{request_id}"


def queue_card(
    views: Sequence[CardView], total: int, *, message: str | None = None, tone: Tone = "good"
) -> Element:
    """The queue of `total` waiting items, the first of them drawn from `views` (oldest
    deadline first), as many as fit under Teams' message size."""
    for shown in range(min(len(views), MAX_QUEUE_ITEMS), 0, -1):
        built = _card(views[:shown], total, message, tone)
        if fits(built):
            return built
    return _card((), total, message, tone)


def _card(views: Sequence[CardView], total: int, message: str | None, tone: Tone) -> Element:
    if total:
        title = f"📋 {total} {'item waits' if total == 1 else 'items wait'} for you"
    else:
        title = "📋 Nothing is waiting for you."
    body: list[Element] = [text_block(title, weight="Bolder", size="Medium")]
    if message:
        body.append(banner(message, tone))
    body += [_item(view) for view in views]
    if total > len(views):
        body.append(text_block(f"… and {total - len(views)} more in the web inbox.", isSubtle=True))
    return adaptive_card(body, title.removeprefix("📋 "))


def _item(view: CardView) -> Element:
    request = view.request
    data = {"request_id": request.id, "tier": view.tier, QUEUE: True}
    rationale: Element = {
        "type": "Input.Text",
        "id": item_input(RATIONALE, request.id),
        "label": "Rationale",
        "isMultiline": True,
        "maxLength": MAX_INPUT,
        "placeholder": "Why? Required to reject, and for any verdict on a high-risk item.",
    }
    actions: list[Element]
    if view.kind == "review":
        actions = [
            execute("confirm", "Confirm", data, "positive"),
            execute("reverse", "Reverse", data, "destructive"),
        ]
    else:
        actions = [
            execute("approve", "Approve", data, "positive"),
            reject_action(request, data, item_input(REJECT_OPTION, request.id)),
        ]
    if view.inbox_url:
        actions.append({"type": "Action.OpenUrl", "title": "Open in inbox", "url": view.inbox_url})
    items = [headline(view, MAX_ITEM_SUMMARY), *first_screen(view), rationale, action_set(actions)]
    return {"type": "Container", "separator": True, "spacing": "Large", "items": items}
