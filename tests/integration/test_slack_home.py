"""The Slack App Home tab "Waiting for you": drawn when a reviewer opens it, redrawn when
their queue changes, with buttons that work as on the cards. Real signed Events API and
interaction requests against the app on loopback, and the fake Slack Web API."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from slack_sdk.models.views import View

from bot.core.clock import ManualClock
from tests.conftest import RepoFactory
from tests.integration.test_slack import MEDIUM, World, open_world
from tests.support.fake_slack import FakeSlack, action_ids, all_text
from tests.support.slack_payloads import app_home_opened, event_body, form_body, home_block_actions
from tests.unit.slack.test_cards import valid_blocks

JSON = {"content-type": "application/json"}


@pytest.fixture
async def w(repo_factory: RepoFactory, slack: FakeSlack) -> AsyncIterator[World]:
    world = await open_world(repo_factory, slack, ManualClock())
    try:
        yield world
    finally:
        await world.close()


async def quiet(w: World) -> None:
    """Clicks done, the outbox drained, and the home redraws that followed sent."""
    await w.settle()
    async with asyncio.timeout(10):
        await w.slack_app.idle()


async def open_home(w: World, uid: str, tab: str = "home") -> None:
    response = await w.send(event_body(app_home_opened(uid, tab)), headers=JSON)
    assert response.status_code == 200, response.text
    await quiet(w)


def home_of(w: World, uid: str) -> dict[str, Any]:
    home = w.slack.home(uid)
    assert home is not None, f"no App Home published for {uid}"
    View(**home).validate_json()
    valid_blocks(home["blocks"], limit=100)
    return home


def published_for(w: World, uid: str) -> int:
    return len([c for c in w.slack.calls("views.publish") if c.args["user_id"] == uid])


async def test_the_home_tab_lists_what_waits_for_you_with_the_card_words_and_buttons(
    w: World,
) -> None:
    rid = await w.submit(MEDIUM)
    await w.drain()
    await open_home(w, "U0AAA")
    home = home_of(w, "U0AAA")
    text = all_text(home["blocks"])
    assert "Waiting for you" in text and "1 item waiting for you" in text
    for words in [
        "Pay INV-1 to ACME",
        "The agent is unsure",
        "*Agent recommends:* pay it · 30% confident",
        "Needs one person from tier junior or above",
        "Goes to tier senior at <!date^",
    ]:
        assert words in text, words
    assert action_ids(home["blocks"]) == [
        "signoff_approve",
        "signoff_reject",
        "signoff_modify",
        "signoff_allow_similar",
        "signoff_details",
    ]
    assert f"http://signoff.test/requests/{rid}" in text

    # Someone who may not act at any tier sees an empty queue; the Messages tab draws none.
    await open_home(w, "U0ZZZ")
    assert "Nothing is waiting for you" in all_text(home_of(w, "U0ZZZ")["blocks"])
    await open_home(w, "U0BBB", tab="messages")
    assert w.slack.home("U0BBB") is None


async def test_the_home_follows_new_items_and_a_click_there_counts_like_one_on_the_card(
    w: World,
) -> None:
    first = await w.submit(MEDIUM)
    await w.drain()
    await open_home(w, "U0AAA")
    await open_home(w, "U0DDD")  # a manager may act on junior items too
    await open_home(w, "U0ZZZ")
    assert published_for(w, "U0AAA") == 1

    second = await w.submit(
        {**MEDIUM, "thread_id": "lg-2", "action": {**MEDIUM["action"], "summary": "Pay INV-2"}}
    )
    await quiet(w)  # the card is posted, and the homes that should show it are redrawn
    home = home_of(w, "U0AAA")
    assert "2 items waiting for you" in all_text(home["blocks"])
    assert "Pay INV-2" in all_text(home["blocks"])
    assert "Pay INV-2" in all_text(home_of(w, "U0DDD")["blocks"])

    body = form_body(home_block_actions("U0AAA", home, "signoff_approve", first))
    assert (await w.send(body)).status_code == 200
    await quiet(w)
    assert (await w.get(first))["status"] == "approved"
    card = w.card(first)
    assert action_ids(card.blocks) == [] and "Approved* by alice" in all_text(card.blocks)
    home = home_of(w, "U0AAA")
    assert "1 item waiting for you" in all_text(home["blocks"])
    assert "Pay INV-1 to ACME" not in all_text(home["blocks"])
    assert "Pay INV-1 to ACME" not in all_text(home_of(w, "U0DDD")["blocks"])
    assert second in all_text(home["blocks"])

    # Someone who may act on neither item keeps the home drawn once.
    assert published_for(w, "U0ZZZ") == 1
    # Nothing was said in a channel about the click: the home has none to answer in.
    assert w.slack.calls("chat.postEphemeral") == []
