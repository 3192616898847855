"""Queue cards as Slack and Teams draw them: mentions, every item linked, within each
platform's size limits at 200 items, and nothing listed once closed."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from adapters.slack import queue_cards as slack_queue
from adapters.slack.cards import MAX_BLOCKS
from adapters.teams import queue_cards as teams_queue
from adapters.teams._elements import MAX_CARD_BYTES
from bot.core.domain import QUEUE_KIND, BatchCard, BatchStatus
from bot.core.views import QueueView
from tests.unit.slack.test_batch_cards import item
from tests.unit.slack.test_cards import NOW, valid_blocks
from tests.unit.teams.schema import assert_adaptive_card

REVIEWERS = ("slack:U0ALICE", "slack:U0BOB", "teams:aad-carol", "web:dana")


def queue(n: int, *, total: int | None = None, status: BatchStatus = BatchStatus.OPEN) -> QueueView:
    items = tuple(
        dataclasses.replace(
            item(i),
            action=dataclasses.replace(item(i).action, summary=f"Refund order {i} " + "x" * 80),
        )
        for i in range(1, n + 1)
    )
    card = BatchCard(
        id="que_0001",
        tier="junior",
        kind=QUEUE_KIND,
        channel="slack",
        target="C0JUNIOR",
        members=tuple(r.id for r in items),
        total=n if total is None else total,
        status=status,
        created_at=NOW,
        updated_at=NOW,
    )
    return QueueView(card, items, REVIEWERS, "http://signoff.test")


def slack_text(blocks: list[dict[str, Any]]) -> str:
    return json.dumps(blocks)


def test_slack_lists_200_items_with_their_inbox_links_and_mentions_the_reviewers() -> None:
    message = slack_queue.queue_message(queue(200, total=230))

    valid_blocks(message.blocks)
    assert len(message.blocks) <= MAX_BLOCKS
    text = slack_text(message.blocks)
    assert "<@U0ALICE> <@U0BOB>" in text and "carol" not in text
    assert all(f"/requests/req_{i:04d}" in text for i in range(1, 201))
    assert "230 items wait at junior" in message.text
    assert "and 30 more in the web inbox" in text


def test_teams_stays_under_its_size_limit_and_mentions_its_reviewers() -> None:
    card = teams_queue.queue_card(queue(200))

    assert_adaptive_card(card)
    assert len(json.dumps(card, ensure_ascii=False).encode()) <= MAX_CARD_BYTES
    text = json.dumps(card)
    listed = sum(f"/requests/req_{i:04d}" in text for i in range(1, 201))
    assert listed >= 150  # summaries shortened first; the newest left to "and N more"
    if listed < 200:
        assert f"and {200 - listed} more in the web inbox" in text
    assert [e["mentioned"]["id"] for e in card["msteams"]["entities"]] == ["aad-carol"]
    assert "<at>Reviewer 1</at>" in text


def test_a_closed_queue_card_lists_nothing_and_mentions_nobody() -> None:
    view = queue(3, status=BatchStatus.CLOSED)

    message = slack_queue.queue_message(view)
    valid_blocks(message.blocks)
    assert "handled" in message.text and "/requests/" not in slack_text(message.blocks)
    assert "<@" not in slack_text(message.blocks)
    card = teams_queue.queue_card(view)
    assert_adaptive_card(card)
    assert "/requests/" not in json.dumps(card) and "msteams" not in card
