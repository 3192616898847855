"""SlackSocketMode's own lifecycle: shutdown never waits on an unresponsive Slack."""

from __future__ import annotations

import asyncio

import pytest

from adapters.slack import SlackApp, SlackSocketMode, slack_client
from adapters.slack import socket_mode as module
from bot.core.ports import ReviewService


def unused_review() -> ReviewService:
    raise AssertionError("no envelope arrives in these tests")


async def test_close_gives_up_on_a_silent_slack_and_releases_everything(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Port 9 (discard) refuses: the client keeps retrying apps.connections.open meanwhile.
    client = slack_client("xoxb-test", "http://127.0.0.1:9/api/", timeout=1)
    socket = SlackSocketMode(
        SlackApp(client=client, signing_secret=None, review=unused_review),
        "xapp-test",
        ping_interval=0.05,
    )
    await socket.start()
    handler = socket._handler
    assert handler is not None

    async def never_closes() -> None:
        await asyncio.Event().wait()

    monkeypatch.setattr(handler, "close_async", never_closes)
    monkeypatch.setattr(module, "_CLOSE_TIMEOUT", 0.1)
    async with asyncio.timeout(5):
        await socket.aclose()
    assert handler.client.aiohttp_client_session.closed
    processor = handler.client.message_processor
    await asyncio.wait([processor], timeout=1)
    assert processor.cancelled()
    await socket.aclose()  # a second close is a no-op
