"""Teams batch cards: valid Adaptive Card 1.5 at every size; toggles read back from data."""

from __future__ import annotations

import dataclasses

from adapters.teams import batch_cards
from bot.core.domain import BatchItemResult, BatchStatus, Status, Verdict
from routing import Risk
from tests.unit.slack.test_batch_cards import item, view
from tests.unit.teams.schema import assert_adaptive_card
from tests.unit.teams.test_cards import DEADLINE, WORDING
from tests.unit.teams.test_cards import request as cards_request
from tests.unit.teams.test_cards import vote as cards_vote


def toggle_ids(card: dict[str, object]) -> list[str]:
    return [
        element["id"]
        for container in card["body"]  # type: ignore[attr-defined]
        if container.get("type") == "Container"
        for element in container["items"]
        if element.get("type") == "Input.Toggle"
    ]


def test_open_card_has_toggles_rationale_and_both_verbs() -> None:
    card = batch_cards.batch_card(
        view([item(1), item(2, status=Status.APPROVED), item(3)], total=4), message="hi"
    )

    assert_adaptive_card(card)
    assert toggle_ids(card) == ["pick:req_0001", "pick:req_0003"]
    assert [a["verb"] for a in card["actions"]] == ["batch_approve", "batch_reject"]
    assert all(a["data"] == {"batch_id": "bat_0001"} for a in card["actions"])
    assert any(e.get("id") == "rationale" for e in card["body"])


def test_closed_card_has_no_inputs_or_actions() -> None:
    card = batch_cards.batch_card(view([item(1)], status=BatchStatus.CLOSED))

    assert_adaptive_card(card)
    assert "actions" not in card and toggle_ids(card) == []


def test_fifty_long_items_fit_a_teams_message() -> None:
    long = [
        item(n, action=dataclasses.replace(item(n).action, summary="x" * 5000), agent_id="a" * 90)
        for n in range(50)
    ]
    card = batch_cards.batch_card(view(long, total=70))

    assert_adaptive_card(card)
    shown = len(toggle_ids(card))
    assert 20 <= shown < 50
    assert f"and {70 - shown} more" in str(card["body"])


def test_picked_ids_and_results_message() -> None:
    data = {"batch_id": "b", "pick:req_1": "true", "pick:req_2": "false", "pick:": "true"}
    assert batch_cards.picked_ids(data) == ["req_1"]

    text, tone = batch_cards.results_message(
        Verdict.APPROVE,
        [BatchItemResult("req_1", True), BatchItemResult("req_2", False, "x", "not allowed")],
        {"req_2": "Refund 2"},
    )
    assert text == "Recorded: 1 item approved. Not recorded for 1: Refund 2 (not allowed)."
    assert tone == "warning"


def test_items_use_the_same_words_as_their_own_cards() -> None:
    base = cards_request(risk=Risk.LOW, approvals_required=1, domain="finance")
    waiting = dataclasses.replace(base, id="req_0001")
    done = dataclasses.replace(
        base,
        id="req_0002",
        status=Status.REJECTED,
        votes=(dataclasses.replace(cards_vote("teams:aad-1", Verdict.REJECT), name="Ana"),),
    )
    card = batch_cards.batch_card(dataclasses.replace(view([waiting, done]), wording=WORDING))

    assert_adaptive_card(card)
    first, second = [e for e in card["body"] if e.get("type") == "Container" and e.get("separator")]
    facts = first["items"][1]["inlines"][0]["text"]
    assert facts == "invoice-bot · $5,000.00 · 62% confident · Large payment, Regulated domain"
    deadline = first["items"][2]
    assert deadline["type"] == "TextBlock"  # where the card's DATE() and TIME() are read
    assert deadline["text"] == (
        f"⏰ Goes to tier senior at {{{{TIME({DEADLINE})}}}} on "
        f"{{{{DATE({DEADLINE}, SHORT)}}}} if no one decides"
    )
    assert second["items"][-1]["inlines"][0]["text"] == "Rejected by Ana"
    assert "high_value_transaction" not in str(card)
