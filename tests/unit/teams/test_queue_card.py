"""The personal queue card: each item's first screen and buttons, valid at every size."""

from __future__ import annotations

import dataclasses
from typing import Any

import jsonschema

from adapters.teams import queue_card
from adapters.teams.bot import parse_action
from bot.core.domain import Action, ReviewStatus, Status, Verdict
from routing import Lane, ReviewState, Risk
from tests.unit.teams.test_cards import (
    DEADLINE,
    assert_valid,
    executes,
    inputs,
    request,
    text_of,
    view,
    walk,
)


def items(card: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for e in card["body"] if e["type"] == "Container" and e.get("separator")]


def test_each_item_shows_its_first_screen_and_its_buttons(
    validator: jsonschema.Draft6Validator,
) -> None:
    payment = request(domain="finance")
    refund = request(
        id="req_02refund",
        action=Action("refund", "Refund order 991", {"order": 991}),
        risk=Risk.LOW,
        reasons=(),
        amount=12.0,
        approvals_required=1,
        reject_options=("duplicate", "no receipt"),
        context={"recommendation": "refund in full"},
    )
    review = request(
        id="req_03review",
        status=Status.APPROVED,
        lane=Lane.REVIEW,
        risk=Risk.MEDIUM,
        review=ReviewState.QUEUED,
        review_status=ReviewStatus.OPEN,
        decided_at=payment.created_at,
    )
    card = queue_card.queue_card([view(payment), view(refund), view(review)], 3)
    assert_valid(validator, card)
    assert card["body"][0]["text"] == "📋 3 items wait for you"
    first, second, third = items(card)
    words = text_of(first)
    assert "Approval needed: " in words and "Pay INV-123 to ACME" in words
    assert {"title": "Amount", "value": "$5,000.00"} in next(
        n["facts"] for n in walk(first) if n.get("type") == "FactSet"
    )
    assert "Large payment — Payment of 5,000 USD is over the 500 limit" in "".join(
        run["text"] for run in walk(first) if run.get("type") == "TextRun"
    )
    assert "pay it" in words and "62% confident" in words
    assert "Needs two different people" in words
    assert f"Goes to tier senior at {{{{TIME({DEADLINE})}}}}" in words
    # The same verbs and data as the item's own card, plus the flag that redraws the queue.
    assert set(executes(first)) == {"approve", "reject"}
    for action in executes(first).values():
        assert action["data"] == {"request_id": payment.id, "tier": "junior", "queue": True}
    assert set(executes(third)) == {"confirm", "reverse"}
    # One card, many items: every input is named after its item, and none is required
    # (a click checks every input of the card).
    assert inputs(card) == {
        f"rationale:{payment.id}",
        f"rationale:{refund.id}",
        f"reject_option:{refund.id}",
        f"rationale:{review.id}",
    }
    assert not any(n.get("isRequired") for n in walk(card))
    assert "refund in full" in text_of(second) and "$12.00" in str(second)


def test_a_click_on_the_queue_reads_its_items_own_inputs() -> None:
    data = {
        "request_id": "req_2",
        "tier": "junior",
        "queue": True,
        "rationale:req_1": "not this one",
        "rationale:req_2": "  duplicate of 990 ",
        "reject_option:req_2": "duplicate",
    }
    action = parse_action("reject", data)
    assert action.from_queue and action.request_id == "req_2"
    assert action.verdict is Verdict.REJECT
    assert action.rationale == "duplicate: duplicate of 990"
    plain = parse_action("approve", {"request_id": "req_1", "rationale": "fine"})
    assert not plain.from_queue and plain.rationale == "fine"


def test_a_long_queue_fits_a_teams_message(validator: jsonschema.Draft6Validator) -> None:
    long = "L" * 2_000
    views = [
        view(
            request(
                id=f"req_{n:04d}",
                action=Action("payment", long, {"blob": long}),
                context={"recommendation": long},
                # The API's limits: 20 options of 150 characters.
                reject_options=tuple(f"{i:02d}" + "R" * 148 for i in range(20)),
            )
        )
        for n in range(queue_card.MAX_QUEUE_ITEMS)
    ]
    card = queue_card.queue_card(views, 40, message="m" * 3_000)
    assert_valid(validator, card)
    shown = len(items(card))
    assert 1 <= shown < queue_card.MAX_QUEUE_ITEMS
    assert f"… and {40 - shown} more in the web inbox." in text_of(card)


def test_an_empty_queue(validator: jsonschema.Draft6Validator) -> None:
    card = queue_card.queue_card([], 0, message="Recorded: approved.")
    assert_valid(validator, card)
    assert card["body"][0]["text"] == "📋 Nothing is waiting for you."
    assert card["fallbackText"] == "Nothing is waiting for you."
    one = queue_card.queue_card([view(dataclasses.replace(request(), risk=Risk.LOW))], 1)
    assert_valid(validator, one)
    assert one["body"][0]["text"] == "📋 1 item waits for you"
