"""Where each outbox message goes, as the per-destination cap counts it, and lane caps."""

from __future__ import annotations

from bot.core.domain import OutboxKind
from bot.core.lanes import LANE_KINDS, OutboxCaps, destination, lane_of


def test_every_kind_has_one_lane() -> None:
    assert sorted(k for kinds in LANE_KINDS.values() for k in kinds) == sorted(OutboxKind)
    assert lane_of(OutboxKind.WEBHOOK) == "webhooks"
    assert lane_of(OutboxKind.ALERT) == "alerts"
    assert lane_of(OutboxKind.UPDATE_BATCH) == "cards"


def test_destinations() -> None:
    hook = {"url": "HTTP://Agent.example:80/resume?x=1"}
    assert destination(OutboxKind.WEBHOOK, hook, "r") == "webhook:http://agent.example:80"
    same = {"url": "http://agent.example/other"}
    assert destination(OutboxKind.WEBHOOK, same, "r") == "webhook:http://agent.example:80"
    secure = {"url": "https://agent.example/resume"}
    assert destination(OutboxKind.WEBHOOK, secure, "r") == "webhook:https://agent.example:443"
    card = {"channel": "slack", "target": "C0JUNIOR", "tier": "junior"}
    assert destination(OutboxKind.POST_CARD, card, "r") == "slack:C0JUNIOR"
    assert destination(OutboxKind.ALERT, {"channel": "teams"}, None) == "alert:teams"
    noted = {"version": 3, "destination": "teams:19:abc"}
    assert destination(OutboxKind.UPDATE_CARDS, noted, "r") == "teams:19:abc"
    assert destination(OutboxKind.UPDATE_CARDS, {"version": 3}, "req_1") == "request:req_1"


def test_caps_keep_a_slot_for_every_lane() -> None:
    assert OutboxCaps().problem() is None
    tight = OutboxCaps(max_in_flight=10, lanes={"webhooks": 8, "cards": 2, "alerts": 1})
    # Webhooks and cards busy take 10 of 10: alerts would wait behind them.
    assert "leaves lane alerts no slot" in (tight.problem() or "")
