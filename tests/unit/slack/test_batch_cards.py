"""Slack batch cards: valid Block Kit at every size, selections parsed from `state.values`."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from adapters.slack import batch_cards
from bot.core.domain import BatchCard, BatchItemResult, BatchStatus, Status, Verdict
from bot.core.views import BatchView
from routing import Risk
from tests.unit.slack.test_cards import NOW, request, valid_blocks, valid_view


def item(n: int, **changes: Any) -> Any:
    base = request(
        id=f"req_{n:04d}",
        risk=Risk.LOW,
        approvals_required=1,
        tier="junior",
        action=dataclasses.replace(request().action, kind="invoice", summary=f"File INV-{n}"),
    )
    return dataclasses.replace(base, **changes)


def view(items: list[Any], total: int | None = None, **changes: Any) -> BatchView:
    card = BatchCard(
        id="bat_0001",
        tier="junior",
        kind="invoice",
        channel="slack",
        target="C0JUNIOR",
        members=tuple(r.id for r in items),
        total=len(items) if total is None else total,
        status=BatchStatus.OPEN,
        created_at=NOW,
        updated_at=NOW,
    )
    return BatchView(dataclasses.replace(card, **changes), tuple(items), "http://signoff.test")


def pick_ids(blocks: list[dict[str, Any]]) -> list[str]:
    return [
        option["value"]
        for block in blocks
        if block.get("accessory", {}).get("type") == "checkboxes"
        for option in block["accessory"]["options"]
    ]


def buttons(blocks: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [
        (e["action_id"], e["value"])
        for b in blocks
        if b["type"] == "actions"
        for e in b["elements"]
    ]


def test_open_card_has_a_box_per_waiting_item_and_the_two_buttons() -> None:
    decided = item(2, status=Status.APPROVED)
    message = batch_cards.batch_message(view([item(1), decided, item(3)], total=5))

    valid_blocks(message.blocks)
    assert message.blocks[0]["text"]["text"] == "4 invoice items waiting at junior"
    assert pick_ids(message.blocks) == ["req_0001", "req_0003"]
    assert buttons(message.blocks) == [
        ("signoff_batch_approve", "bat_0001"),
        ("signoff_batch_reject", "bat_0001"),
    ]
    text = json.dumps(message.blocks)
    assert "http://signoff.test/requests/req_0001" in text and "and 2 more" in text
    assert "Approved" in text  # the decided member shows its outcome, with no box


def test_closed_card_has_no_boxes_and_no_buttons() -> None:
    decided = [item(n, status=Status.REJECTED) for n in (1, 2)]
    for message in (
        batch_cards.batch_message(view(decided)),
        batch_cards.batch_message(view([item(1)], status=BatchStatus.CLOSED)),
    ):
        valid_blocks(message.blocks)
        assert "decided" in message.blocks[0]["text"]["text"]
        assert pick_ids(message.blocks) == [] and buttons(message.blocks) == []


def test_ineligible_members_are_never_selectable() -> None:
    high = item(1, risk=Risk.HIGH)
    two = item(2, approvals_required=2)
    moved = item(3, tier="senior")
    message = batch_cards.batch_message(view([high, two, moved, item(4)]))

    assert pick_ids(message.blocks) == ["req_0004"]
    assert "now at tier *senior*" in json.dumps(message.blocks)


def test_fifty_long_items_stay_within_block_kit_limits() -> None:
    long = [
        item(n, action=dataclasses.replace(item(n).action, summary="x" * 5000), amount=1e9)
        for n in range(50)
    ]
    message = batch_cards.batch_message(view(long, total=80))

    valid_blocks(message.blocks)
    assert len(pick_ids(message.blocks)) == batch_cards.MAX_SHOWN
    assert "and 35 more" in json.dumps(message.blocks)


def test_selected_ids_reads_every_ticked_box_once() -> None:
    state = {
        "values": {
            "signoff_pick:req_1": {
                "signoff_batch_pick": {
                    "type": "checkboxes",
                    "selected_options": [{"value": "req_1"}],
                }
            },
            "signoff_pick:req_2": {
                "signoff_batch_pick": {"type": "checkboxes", "selected_options": []}
            },
            "other": {"x": {"type": "plain_text_input", "value": "req_9"}},
            "forged": {"y": {"type": "checkboxes", "selected_options": [{"value": "req_1"}]}},
        }
    }
    assert batch_cards.selected_ids(state) == ["req_1"]
    assert batch_cards.selected_ids(None) == [] and batch_cards.selected_ids({"values": 3}) == []


def test_batch_modal_is_a_valid_view_carrying_the_selection() -> None:
    ids = [f"req_{n:04d}" for n in range(50)]
    modal = batch_cards.batch_modal(
        "bat_0001", Verdict.REJECT, ids, [item(n) for n in range(50)], external_id="x"
    )

    valid_view(modal)
    assert modal["callback_id"] == "signoff_batch_verdict"
    assert batch_cards.parse_batch_metadata(modal) == ("bat_0001", Verdict.REJECT, ids)
    assert batch_cards.parse_batch_metadata({"private_metadata": "{}"}) is None


def test_results_text_names_each_refusal() -> None:
    results = [
        BatchItemResult("req_1", True),
        BatchItemResult("req_2", False, "high_risk", "high-risk items are decided one by one"),
        BatchItemResult("req_3", False, "not_found", "this item does not exist"),
    ]
    text = batch_cards.results_text(Verdict.APPROVE, results, {"req_2": "Pay <ACME>"})

    assert text.startswith("✅ 1 item approved.")
    assert "• *Pay &lt;ACME&gt;* — high-risk items are decided one by one." in text
    assert "• *req_3* — this item does not exist." in text
