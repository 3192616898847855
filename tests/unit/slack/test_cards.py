"""Block Kit builders: every card and modal is valid Block Kit and stays within Slack's limits."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

from adapters.slack import cards
from adapters.slack._mrkdwn import chunks, clip, escape
from bot.core.domain import (
    Action,
    ApprovalRequest,
    ReviewStatus,
    Status,
    TierMove,
    Verdict,
    Vote,
)
from bot.core.views import CardView
from routing import Lane, ReviewState, Risk

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
CHAIN = ("junior", "senior", "manager")
INBOX = "http://signoff.test/requests/req_1"


def request(**changes: Any) -> ApprovalRequest:
    base = ApprovalRequest(
        id="req_01test",
        agent_id="invoice-bot",
        action=Action("payment", "Pay INV-123 to ACME", {"invoice": "INV-123", "amount": 5000}),
        confidence=0.62,
        status=Status.PENDING,
        lane=Lane.ESCALATE,
        risk=Risk.HIGH,
        reasons=("high_value_transaction", "regulated_domain"),
        tier="manager",
        approvals_required=2,
        review=ReviewState.NONE,
        created_at=NOW,
        updated_at=NOW,
        amount=5000,
        currency="USD",
        requested_by="slack:U0REQ",
        deadline_at=NOW + timedelta(hours=4),
        context={
            "summary": "ACME invoice, matched to PO-77",
            "goal": "pay suppliers on time",
            "recommendation": "pay",
            "alternatives": ["wait for the PO owner", {"option": "pay half"}],
            "failure_reason": "amount above the autonomous limit",
            "conversation": [{"role": "user", "content": "please pay ACME"}],
            "customer": {"id": "C-9", "name": "ACME"},
        },
        history=(TierMove(None, "manager", NOW, "start"),),
    )
    return dataclasses.replace(base, **changes)


def vote(verdict: Verdict, name: str = "Dan", rationale: str = "ok", **kw: Any) -> Vote:
    digest = kw.pop("digest", request().action.sha256)
    return Vote(f"slack:U0{name.upper()}", name, verdict, rationale, NOW, "slack", digest)


def view_of(req: ApprovalRequest, tier: str = "manager", note: str | None = None) -> CardView:
    return CardView(
        request=req,
        tier=tier,
        target="C0MGR",
        mentions=("slack:U0DDD", "web:max", "slack:U0EEE", "teams:abc"),
        note=note,
        inbox_url=INBOX,
        tier_chain=CHAIN,
    )


def valid_blocks(blocks: list[dict[str, Any]]) -> None:
    assert 0 < len(blocks) <= cards.MAX_BLOCKS
    for block in blocks:
        parsed = Block.parse(block)
        assert parsed is not None, block
        parsed.validate_json()
        for text in _texts(block):
            assert len(text) <= cards.MAX_TEXT


def valid_view(view: dict[str, Any]) -> None:
    View(**view).validate_json()
    valid_blocks(view["blocks"])


def _texts(value: Any) -> list[str]:
    if isinstance(value, dict):
        found = [value["text"]] if isinstance(value.get("text"), str) else []
        return found + [t for v in value.values() for t in _texts(v)]
    if isinstance(value, list):
        return [t for v in value for t in _texts(v)]
    return []


def _mrkdwn_objects(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, dict):
        found = [value] if value.get("type") == "mrkdwn" else []
        return found + [o for v in value.values() for o in _mrkdwn_objects(v)]
    if isinstance(value, list):
        return [o for v in value for o in _mrkdwn_objects(v)]
    return []


def buttons(blocks: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [
        (e["action_id"], e["value"])
        for b in blocks
        if b["type"] == "actions"
        for e in b["elements"]
    ]


def text_of(blocks: list[dict[str, Any]]) -> str:
    return "\n".join(_texts(blocks))


# -- cards -----------------------------------------------------------------------------------


def test_approval_card_has_the_contract_buttons_and_what_a_reviewer_needs() -> None:
    message = cards.card_message(view_of(request()), ping=True)
    valid_blocks(message.blocks)
    assert buttons(message.blocks) == [
        ("signoff_approve", "req_01test"),
        ("signoff_reject", "req_01test"),
        ("signoff_modify", "req_01test"),
        ("signoff_details", "req_01test"),
    ]
    text = text_of(message.blocks)
    for fact in [
        "Pay INV-123 to ACME",
        "invoice-bot",
        "escalate",
        "high",
        "high_value_transaction, regulated_domain",
        "62%",
        "5,000.00 USD",
        "manager (3 of 3)",
        "0 of 2",
        f"<!date^{int((NOW + timedelta(hours=4)).timestamp())}^",  # each reader's time zone
        "slack:U0REQ",
        "ACME invoice, matched to PO-77",
        "pay suppliers on time",
        "wait for the PO owner",
        "amount above the autonomous limit",
        '"invoice": "INV-123"',
        INBOX,
    ]:
        assert fact in text, fact
    assert message.text.startswith("<@U0DDD> <@U0EEE> ")
    assert "web:max" not in message.text and "abc" not in message.text


def test_edits_do_not_ping_and_votes_show_who_when_why() -> None:
    req = request(votes=(vote(Verdict.APPROVE, "Dan", "IBAN checked"),))
    message = cards.card_message(view_of(req))
    valid_blocks(message.blocks)
    assert "<@" not in message.text
    text = text_of(message.blocks)
    assert "1 of 2" in text and "Dan" in text and "IBAN checked" in text
    assert f"<!date^{int(NOW.timestamp())}^" in text  # when


def test_review_cards_offer_confirm_and_reverse() -> None:
    req = request(
        status=Status.APPROVED,
        lane=Lane.REVIEW,
        risk=Risk.LOW,
        reasons=(),
        review=ReviewState.QUEUED,
        review_status=ReviewStatus.OPEN,
        tier="junior",
        decided_at=NOW,
        deadline_at=None,
    )
    message = cards.card_message(view_of(req, tier="junior"), ping=True)
    valid_blocks(message.blocks)
    assert [a for a, _ in buttons(message.blocks)] == [
        "signoff_confirm",
        "signoff_reverse",
        "signoff_details",
    ]
    assert "already went ahead" in text_of(message.blocks)


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"status": Status.APPROVED, "votes": (vote(Verdict.APPROVE),)}, "Approved* by Dan"),
        ({"status": Status.REJECTED, "votes": (vote(Verdict.REJECT, rationale="no PO"),)}, "no PO"),
        ({"status": Status.EXPIRED}, "no verdict before the last tier's deadline"),
        ({"status": Status.CANCELLED}, "Cancelled by the agent"),
        ({"status": Status.REVERSED, "votes": (vote(Verdict.REVERSE),)}, "Reversed* by Dan"),
        (
            {
                "status": Status.MODIFIED,
                "modified_action": Action("payment", "Pay INV-123 to ACME", {"invoice": "X"}),
                "votes": (
                    vote(
                        Verdict.MODIFY,
                        digest=Action("payment", "Pay INV-123 to ACME", {"invoice": "X"}).sha256,
                    ),
                ),
            },
            "Approved with changes* by Dan",
        ),
        (
            {"status": Status.APPROVED, "review_status": ReviewStatus.CONFIRMED},
            "Confirmed",
        ),
    ],
)
def test_final_cards_have_no_buttons_and_say_how_it_ended(
    changes: dict[str, Any], says: str
) -> None:
    req = request(decided_at=NOW, deadline_at=None, **changes)
    message = cards.card_message(view_of(req), ping=True)
    valid_blocks(message.blocks)
    assert buttons(message.blocks) == []
    assert says in text_of(message.blocks)
    assert "<@" not in message.text  # nobody is pinged about a closed item


def test_an_escalated_card_loses_its_buttons_and_names_the_new_tier() -> None:
    req = request(tier="senior")
    message = cards.card_message(view_of(req, tier="junior", note="Escalated to senior"))
    valid_blocks(message.blocks)
    assert buttons(message.blocks) == []
    assert "Escalated to senior" in text_of(message.blocks)


def test_agent_text_cannot_ping_or_fake_links() -> None:
    req = request(
        action=Action("payment", "<!channel> pay <https://evil|here> & now", {"x": "<@U1>"}),
        context={"summary": "<!here>", "recommendation": "<@U0DDD>"},
        votes=(vote(Verdict.APPROVE, "<!everyone>", "<#C1>"),),
    )
    message = cards.card_message(view_of(req), ping=True)
    # Slack parses mentions and links in mrkdwn (and the message text), not in plain_text.
    text = "\n".join(_texts(_mrkdwn_objects(message.blocks))) + message.text
    for raw in ["<!channel>", "<!here>", "<https://evil", "<@U1>", "<!everyone>", "<#C1>"]:
        assert raw not in text
    assert "&lt;!channel&gt; pay &lt;https://evil|here&gt; &amp; now" in text
    assert "<@U0DDD> <@U0EEE>" in message.text  # our own pings survive


HUGE_CONTEXT = {
    "summary": "S" * 50_000,
    "goal": "G" * 5000,
    "recommendation": "R&" * 4000,
    "alternatives": [f"option {i} " + "a" * 300 for i in range(200)],
    "conversation": [{"role": "user", "content": "hello <there> " * 100} for _ in range(500)],
    "actions_attempted": [{"tool": "lookup", "result": "x" * 1000} for _ in range(100)],
    "failure_reason": "F" * 10_000,
    "customer": {f"k{i}": "v" * 100 for i in range(500)},
    "transaction": {"lines": list(range(5000))},
    "policies": ["p" * 3000 for _ in range(30)],
    "extra_key": {"nested": ["y" * 2000] * 10},
}


def test_a_huge_context_stays_within_the_limits_on_the_card() -> None:
    req = request(
        action=Action("payment", "Pay " + "X" * 5000, {f"k{i}": "v" * 50 for i in range(2000)}),
        context=HUGE_CONTEXT,
        reasons=tuple(f"rule_{i}" for i in range(400)),
        votes=tuple(vote(Verdict.APPROVE, f"n{i}", "why " * 500) for i in range(20)),
        requested_by="slack:" + "U" * 3000,
    )
    message = cards.card_message(view_of(req), ping=True)
    valid_blocks(message.blocks)
    assert len(message.text) <= cards.MAX_TEXT
    for field in next(b for b in message.blocks if "fields" in b)["fields"]:
        assert len(field["text"]) <= cards.MAX_FIELD
    assert len(message.blocks[0]["text"]["text"]) <= cards.MAX_HEADER
    assert INBOX in text_of(message.blocks)
    code = next(b for b in message.blocks if "```" in b.get("text", {}).get("text", ""))
    assert code["text"]["text"].endswith("…```")  # the fence is closed after the cut


def test_the_details_modal_shows_everything_that_fits_then_links_the_inbox() -> None:
    small = cards.details_modal(request(), INBOX)
    valid_view(small)
    assert small["callback_id"] == "signoff_details"
    text = text_of(small["blocks"])
    for fact in ["please pay ACME", "C-9", "wait for the PO owner", "pay half", "manager"]:
        assert fact in text, fact
    assert "Shortened" not in text

    huge = cards.details_modal(request(context=HUGE_CONTEXT), INBOX)
    valid_view(huge)
    assert len(huge["blocks"]) <= cards.MAX_BLOCKS
    assert "Shortened to fit Slack" in huge["blocks"][-1]["text"]["text"]
    assert INBOX in huge["blocks"][-1]["text"]["text"]
    huge_text = text_of(huge["blocks"])
    for part in [
        "*Conversation*",
        "hello &lt;there&gt;",
        "*Customer*",
        "*Policies*",
        "*extra_key*",
    ]:
        assert part in huge_text, part


@pytest.mark.parametrize("verdict", list(Verdict))
def test_the_verdict_modal_follows_the_contract(verdict: Verdict) -> None:
    view = cards.verdict_modal(request(), verdict, inbox_url=INBOX, external_id="signoff:C0:1.2")
    valid_view(view)
    assert view["callback_id"] == "signoff_verdict"
    assert json.loads(view["private_metadata"]) == {
        "request_id": "req_01test",
        "verdict": verdict.value,
    }
    inputs = {b["block_id"]: b["element"] for b in view["blocks"] if b["type"] == "input"}
    extra = {Verdict.MODIFY: ["modified_payload"], Verdict.RESPOND: ["response"]}
    assert sorted(inputs) == sorted(["rationale", *extra.get(verdict, [])])
    for block_id, element in inputs.items():
        assert element["action_id"] == block_id
    if verdict is Verdict.MODIFY:
        current = json.loads(inputs["modified_payload"]["initial_value"])
        assert current == {"invoice": "INV-123", "amount": 5000}


def test_modify_prefills_the_edited_payload_and_copes_with_a_huge_one() -> None:
    edited = Action("payment", "Pay INV-123 to ACME", {"invoice": "INV-999"})
    view = cards.verdict_modal(request(modified_action=edited), Verdict.MODIFY)
    [element] = [b["element"] for b in view["blocks"] if b.get("block_id") == "modified_payload"]
    assert json.loads(element["initial_value"]) == {"invoice": "INV-999"}

    big = request(action=Action("payment", "Pay", {"blob": "z" * 5000}))
    view = cards.verdict_modal(big, Verdict.MODIFY, inbox_url=INBOX)
    valid_view(view)
    [element] = [b["element"] for b in view["blocks"] if b.get("block_id") == "modified_payload"]
    assert "initial_value" not in element
    assert INBOX in text_of(view["blocks"])


def test_reminders_ping_the_tiers_slack_reviewers() -> None:
    text = cards.reminder_text(view_of(request()))
    assert text.startswith("⏰ <@U0DDD> <@U0EEE> Still waiting")
    assert "Pay INV-123 to ACME" in text and "<!date^" in text


def test_pending_lists_items_with_links_and_counts_the_rest() -> None:
    items = [request(id=f"req_{i}") for i in range(3)]
    text = cards.pending_text(items, lambda rid: f"http://signoff.test/requests/{rid}", 25)
    assert text.startswith("*25 items waiting for you*")
    assert "<http://signoff.test/requests/req_2|Pay INV-123 to ACME>" in text
    assert text.endswith("…and 22 more in the web inbox.")
    assert cards.pending_text([], lambda rid: None, 0).startswith("Nothing is waiting")
    many = [request(id=f"req_{i}", action=Action("x", "y" * 500)) for i in range(20)]
    assert len(cards.pending_text(many, lambda rid: None, 20)) <= cards.MAX_TEXT


# -- text helpers ----------------------------------------------------------------------------


def test_clip_never_cuts_an_entity_or_a_link_in_half() -> None:
    assert clip("short", 10) == "short"
    cut = clip(escape("a&b") * 10, 12)
    assert len(cut) <= 12 and cut.endswith("…")
    assert not cut.rstrip("…").endswith(("&", "&a", "&am", "&amp"))
    link = "see <http://x.test/very/long/path|the inbox>"
    assert clip(link, 20) == "see…"


def test_chunks_split_at_lines_and_keep_everything() -> None:
    text = "\n".join(f"line {i} " + "x" * 50 for i in range(200))
    pieces = list(chunks(text, 1000))
    assert all(len(p) <= 1000 for p in pieces)
    assert "\n".join(pieces) == text
    assert list(chunks("y" * 2500, 1000)) == ["y" * 1000, "y" * 1000, "y" * 500]
