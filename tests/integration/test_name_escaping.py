"""Names that come from platforms are escaped wherever they are echoed (issue 14 section 4):
Slack mrkdwn, Adaptive Card text and the web inbox's HTML."""

from __future__ import annotations

import json
from typing import Any

from adapters.slack.cards import card_message, details_modal
from adapters.teams.cards import card as teams_card
from adapters.teams.cards import fallback_text
from bot.core.clock import ManualClock
from bot.core.domain import Verdict
from storage.memory import InMemoryRepository
from tests.support.world import World, make_config

NAME = "<!channel> <script>alert(1)</script> [click](http://evil.test) *boss*"


def _markdown_texts(element: Any) -> list[str]:
    """Every string of an Adaptive Card that Teams renders as markdown (TextBlock, Fact)."""
    found: list[str] = []
    if isinstance(element, dict):
        if element.get("type") == "TextBlock":
            found.append(str(element.get("text", "")))
        if "title" in element and "value" in element and "type" not in element:
            found += [str(element["title"]), str(element["value"])]
        for value in element.values():
            found += _markdown_texts(value)
    elif isinstance(element, list):
        for value in element:
            found += _markdown_texts(value)
    return found


async def _decided_view() -> Any:
    world = World(InMemoryRepository(), make_config(), ManualClock())
    rid = await world.submit(confidence=0.2)
    await world.engine.vote(
        rid, "web:sam", Verdict.REJECT, channel="teams", rationale="no", name=NAME
    )
    request = await world.engine.get(rid)
    return world.engine.views.view(request, request.tier or "", "C0")


async def test_slack_mrkdwn_never_carries_a_name_unescaped() -> None:
    view = await _decided_view()
    message = card_message(view)
    modal = details_modal(view)
    for text in (json.dumps(message.blocks), message.text, json.dumps(modal)):
        assert "<!channel>" not in text and "<script>" not in text
    assert "&lt;script&gt;" in json.dumps(message.blocks)


async def test_adaptive_card_markdown_never_carries_a_name_as_markup() -> None:
    view = await _decided_view()
    built = teams_card(view)
    assert "alert(1)" in json.dumps(built)  # the name is shown...
    for text in _markdown_texts(built):  # ...but never where markdown would render it
        assert "[click](http://evil.test)" not in text, text
        assert "*boss*" not in text, text
    assert "[click](http://evil.test)" not in fallback_text(view)


def test_a_rubber_stamp_alert_never_pings_through_a_name() -> None:
    from datetime import UTC, datetime

    from adapters.slack.cards import alert_message
    from bot.core.domain import Alert

    now = datetime(2026, 1, 5, tzinfo=UTC)
    alert = Alert(
        "rubber_stamp", "web:x", True, f"{NAME} approved 100% of 20 decisions", {}, now, now
    )
    message = alert_message(alert)
    for text in (message.text, json.dumps(message.blocks)):
        assert "<!channel>" not in text and "&lt;!channel&gt;" in text
