"""Batch review in Slack end to end: the app on loopback HTTP, the fake Slack Web API, signed
block_actions whose `state.values` carry the ticked boxes, and the agent's webhook receiver."""

from __future__ import annotations

import hashlib
import itertools
import json
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import pytest

from bot.core.clock import ManualClock
from bot.core.domain import OutboxKind
from bot.server.config import LoadedConfig, parse_config
from tests.conftest import RepoFactory
from tests.integration.test_slack import (
    KEY,
    TIERS,
    World,
    ephemerals,
)
from tests.integration.test_slack import (
    open_world as open_slack_world,
)
from tests.support.fake_slack import TEAM_ID, FakeSlack, Message, action_ids, all_text
from tests.support.slack_payloads import user

RULES = [
    {"name": "big_invoice", "when": 'action.kind == "invoice" && amount > 500.0', "risk": "high"},
    {"name": "dual_control", "when": "has(labels.dual)", "risk": "medium", "approvals": 2},
]
_n = itertools.count(1)


def invoice(**changes: Any) -> dict[str, Any]:
    n = next(_n)
    body: dict[str, Any] = {
        "action": {"kind": "invoice", "summary": f"File INV-{n}", "payload": {"n": n}},
        "confidence": 0.3,
        "amount": 120,
        "currency": "EUR",
    }
    return {**body, **changes}


HIGH = {"amount": 9000}
TWO_PERSON = {"labels": {"dual": True}}


def config(api_url: str, resume_url: str, min_items: int = 3) -> LoadedConfig:
    return parse_config(
        {
            "public_url": "http://signoff.test",
            "agents": [
                {
                    "id": "invoice-bot",
                    "key_sha256": hashlib.sha256(KEY.encode()).hexdigest(),
                    "callback_url": resume_url,
                    "webhook_secret_env": "AGENT_WEBHOOK_SECRET",
                    "owner": "slack:U0OWNER",
                }
            ],
            "routing": {
                "rules": RULES,
                "start_tier": {"low": "junior", "medium": "junior", "high": "junior"},
            },
            "tiers": TIERS,
            "slack": {"api_url": api_url},
            "batch": {"min_items": min_items, "max_items": 20},
        },
        env={},
    )


async def open_world(repo_factory: RepoFactory, slack: FakeSlack, clock: ManualClock) -> World:
    loaded = config(slack.api_url, f"{slack.rx.url}/resume")
    return await open_slack_world(repo_factory, slack, clock, loaded)


@pytest.fixture
async def w(repo_factory: RepoFactory, slack: FakeSlack) -> AsyncIterator[World]:
    world = await open_world(repo_factory, slack, ManualClock())
    try:
        yield world
    finally:
        await world.close()


async def submit(w: World, body: dict[str, Any]) -> str:
    w.clock.advance(timedelta(seconds=1))  # "oldest first" needs distinct times
    return await w.submit(body)


async def plan(w: World) -> int:
    planner = w.svc.planner
    assert planner is not None
    changed = await planner.plan()
    await w.drain()
    return changed


def batch_cards(w: World) -> list[Message]:
    return [
        m for m in w.slack.messages() if m.thread_ts is None and "Batch `bat_" in all_text(m.blocks)
    ]


def picks(message: Message) -> list[str]:
    return [
        o["value"]
        for b in message.blocks
        if b.get("accessory", {}).get("type") == "checkboxes"
        for o in b["accessory"]["options"]
    ]


def batch_id(message: Message) -> str:
    [value] = {e["value"] for b in message.blocks if b["type"] == "actions" for e in b["elements"]}
    return str(value)


async def click_batch(w: World, uid: str, action_id: str, card: Message, ids: list[str]) -> None:
    values = {
        f"signoff_pick:{rid}": {
            "signoff_batch_pick": {
                "type": "checkboxes",
                "selected_options": [{"text": {"type": "mrkdwn", "text": "Select"}, "value": rid}],
            }
        }
        for rid in ids
    }
    payload = {
        "type": "block_actions",
        "user": user(uid),
        "api_app_id": "A0SIGNOFF",
        "token": "legacy-verification-token",
        "container": {"type": "message", "message_ts": card.ts, "channel_id": card.channel},
        "trigger_id": f"{next(_n)}.4242.0123456789abcdef",
        "team": {"id": TEAM_ID, "domain": "signoff-test"},
        "channel": {"id": card.channel, "name": "approvals"},
        "message": {"type": "message", "ts": card.ts, "text": card.text, "blocks": card.blocks},
        "state": {"values": values},
        "response_url": w.slack.response_url(f"batch-{next(_n)}"),
        "actions": [
            {
                "action_id": action_id,
                "block_id": "signoff_batch_actions",
                "text": {"type": "plain_text", "text": action_id},
                "value": batch_id(card),
                "type": "button",
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }
    response = await w.send(urlencode({"payload": json.dumps(payload)}).encode())
    assert response.status_code == 200 and response.content == b""


async def voted_events(w: World, rid: str) -> list[dict[str, Any]]:
    records = await w.svc.repo.audit_records(request_id=rid)
    return [dict(r.event.data) for r in records if r.event.event == "voted"]


# -- the flows -------------------------------------------------------------------------------


async def test_a_batch_card_appears_at_the_threshold_once_per_channel(w: World) -> None:
    for _ in range(2):
        await submit(w, invoice())
    await submit(w, invoice(**HIGH))
    await submit(w, invoice(**TWO_PERSON))
    await submit(w, invoice(action={"kind": "refund", "summary": "Refund 1"}))
    await w.drain()
    individual = len(w.slack.calls("chat.postMessage"))
    assert individual == 5  # every item still gets its own card at once

    assert await plan(w) == 0
    assert batch_cards(w) == []

    third = await submit(w, invoice())
    await w.drain()
    assert await plan(w) == 1
    [card] = batch_cards(w)
    assert card.channel == "C0JUNIOR"
    assert all_text(card.blocks).startswith("3 invoice items waiting at junior")
    assert len(picks(card)) == 3 and third in picks(card)
    assert action_ids(card.blocks) == ["signoff_batch_approve", "signoff_batch_reject"]

    assert await plan(w) == 0  # nothing changed: no second card, no edit
    assert len(batch_cards(w)) == 1 and w.slack.calls("chat.update") == []


async def test_batch_approve_records_eligible_items_and_refuses_forged_ones(w: World) -> None:
    eligible = [await submit(w, invoice()) for _ in range(3)]
    high = await submit(w, invoice(**HIGH))
    two = await submit(w, invoice(**TWO_PERSON))
    await w.drain()
    await plan(w)
    [card] = batch_cards(w)
    assert high not in picks(card) and two not in picks(card)

    await click_batch(w, "U0AAA", "signoff_batch_approve", card, [*eligible[:2], high, two])
    await w.settle()

    batch = batch_id(card)
    for rid in eligible[:2]:
        got = await w.get(rid)
        assert got["status"] == "approved"
        [vote] = got["votes"]
        assert (vote["reviewer"], vote["channel"]) == ("slack:U0AAA", "slack")
        [event] = await voted_events(w, rid)
        assert event["batch"] == batch and event["verdict"] == "approve"
        assert action_ids(w.card(rid).blocks) == []  # its own card is updated too
    for rid in (high, two):
        got = await w.get(rid)
        assert got["status"] == "pending" and got["votes"] == []
        assert await voted_events(w, rid) == []
    assert (await w.get(eligible[2]))["status"] == "pending"
    hooks = await w.agent.wait_for(2, path="/resume")
    assert sorted(json.loads(h.body)["data"]["id"] for h in hooks) == sorted(eligible[:2])
    [told] = ephemerals(w, "U0AAA")
    assert "2 items approved" in told.args["text"]
    assert "high-risk items are decided one by one" in told.args["text"]
    assert "two-person items are decided one by one" in told.args["text"]
    # The batch card is redrawn at once: decided items lose their boxes.
    [card] = batch_cards(w)
    assert picks(card) == [eligible[2]] and "Approved" in all_text(card.blocks)


async def test_batch_reject_asks_for_one_rationale_and_the_card_closes(w: World) -> None:
    first = [await submit(w, invoice()) for _ in range(3)]
    await w.drain()
    await plan(w)
    [card] = batch_cards(w)

    await click_batch(w, "U0BBB", "signoff_batch_reject", card, first[:2])
    view = await w.opened(1)
    assert view["callback_id"] == "signoff_batch_verdict"
    meta = json.loads(view["private_metadata"])
    assert meta == {"batch_id": batch_id(card), "verdict": "reject", "request_ids": first[:2]}
    empty = await w.submit_view("U0BBB", view, rationale=" ")
    assert empty.json()["response_action"] == "errors"
    await w.settle()
    for rid in first:
        assert (await w.get(rid))["votes"] == []

    done = await w.submit_view("U0BBB", view, rationale="Duplicates of INV-0")
    assert done.status_code == 200 and done.content == b""
    await w.settle()
    for rid in first[:2]:
        got = await w.get(rid)
        assert got["status"] == "rejected"
        assert got["votes"][0]["rationale"] == "Duplicates of INV-0"
    assert ephemerals(w, "U0BBB") == []

    # The planner rewrites the card around what is left, and takes in newcomers.
    later = await submit(w, invoice())
    await w.drain()
    assert await plan(w) == 1
    [card] = batch_cards(w)
    assert picks(card) == [first[2], later] and card.edits >= 2
    assert all_text(card.blocks).startswith("2 invoice items waiting at junior")

    await click_batch(w, "U0AAA", "signoff_batch_approve", card, [first[2], later])
    await w.settle()
    assert await plan(w) == 1
    [card] = batch_cards(w)
    assert action_ids(card.blocks) == [] and picks(card) == []
    assert "All invoice items at junior decided" in all_text(card.blocks)
    assert await w.svc.repo.open_batches() == []


async def test_a_restart_between_planning_and_posting_posts_the_card_once(
    repo_factory: RepoFactory, slack: FakeSlack
) -> None:
    clock = ManualClock()
    first = await open_world(repo_factory, slack, clock)
    try:
        for _ in range(3):
            await submit(first, invoice())
        planner = first.svc.planner
        assert planner is not None and await planner.plan() == 1
    finally:
        await first.close()  # the outbox never ran: the post is only a row
    assert batch_cards_in(slack) == []

    second = await open_world(repo_factory, slack, clock)
    try:
        await second.drain()
        await second.drain()
        assert await plan(second) == 0
        assert len(batch_cards(second)) == 1
        [post] = await second.svc.repo.list_outbox(kind=OutboxKind.POST_BATCH)
        assert post.attempts == 1
    finally:
        await second.close()


def batch_cards_in(slack: FakeSlack) -> list[Message]:
    return [m for m in slack.messages() if "Batch `bat_" in all_text(m.blocks)]
