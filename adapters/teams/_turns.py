"""Closing the connector client botbuilder opens for every turn.

`CloudAdapter` builds a new `ConnectorClient` (with its own pooled HTTP session) for each
incoming activity and each proactive call, and never closes it. Left alone, every card
posted or edited would leave a keep-alive socket behind until garbage collection.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from botbuilder.core import TurnContext


@asynccontextmanager
async def closing_connector(turn: TurnContext) -> AsyncIterator[None]:
    """Run the block, then close the turn's connector client (if it has one)."""
    client = turn.turn_state.get(turn.adapter.BOT_CONNECTOR_CLIENT_KEY)
    async with AsyncExitStack() as stack:
        if client is not None:
            await stack.enter_async_context(client)
        yield
