"""The web inbox as a channel: its cards are the inbox rows themselves, read from storage."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.core.views import CardView


class WebInboxChannel:
    """Posting marks the item as visible in the inbox; updates show on the next page load.

    It is also an `InlineChannel`: the engine records its cards in the state change's own
    transaction, so the outbox only sees it when a test or a custom wiring sends it there.
    """

    name = "web"

    def card_ref(self, view: CardView) -> Mapping[str, Any]:
        return {"target": view.target, "url": view.inbox_url}

    async def post_card(self, view: CardView) -> Mapping[str, Any]:
        return self.card_ref(view)

    async def update_card(self, ref: Mapping[str, Any], view: CardView) -> None:
        return None

    async def remind(self, ref: Mapping[str, Any], view: CardView) -> None:
        return None
