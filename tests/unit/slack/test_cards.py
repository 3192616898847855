"""Block Kit builders: every card and modal is valid Block Kit and stays within Slack's limits."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

from adapters.slack import cards, similar_modal
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
from bot.core.similar import prefilled
from bot.core.views import CardView, CardViews
from routing import Lane, ReviewState, Risk, RoutingPolicy, TierSpec, compile_policy

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
INBOX = "http://signoff.test/requests/req_01test"
POLICY = compile_policy(
    RoutingPolicy(),
    [
        TierSpec(name="junior", sla="15m", reviewers=("slack:U0AAA",)),
        TierSpec(name="senior", sla="1h", reviewers=("slack:U0CCC",)),
        TierSpec(
            name="manager",
            sla="4h",
            reviewers=("slack:U0DDD", "web:max", "slack:U0EEE", "teams:abc", "slack:S0LEADS"),
        ),
    ],
)
VIEWS = CardViews(POLICY, "http://signoff.test")


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
        domain="financial",
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
    """The card as the outbox draws it: the words come from the policy (bot.core.wording)."""
    view = VIEWS.view(req, tier, "C0MGR")
    return dataclasses.replace(view, note=note) if note else view


def valid_blocks(blocks: list[dict[str, Any]], limit: int = cards.MAX_BLOCKS) -> None:
    assert 0 < len(blocks) <= limit
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
        "Pay INV-123 to ACME — $5,000.00",
        "invoice-bot",
        "high risk",
        "Large payment",
        "A payment of 5,000 USD is over the 500 limit",
        "Regulated area",
        "62% confident",
        "Needs two different people from tier manager or above — 0 of 2 approved\n",
        f"<!date^{int((NOW + timedelta(hours=4)).timestamp())}^{{time}}",  # the reader's zone
        "slack:U0REQ",
        "ACME invoice, matched to PO-77",
        "pay suppliers on time",
        "wait for the PO owner",
        "amount above the autonomous limit",
        "*invoice:* INV-123",
        "*amount:* 5000",
        INBOX,
    ]:
        assert fact in text, fact
    for engineer_talk in ["Lane", "escalate", "high_value_transaction", "Requested by —", "—\n"]:
        assert engineer_talk not in text, engineer_talk
    assert message.text.startswith("<@U0DDD> <@U0EEE> <!subteam^S0LEADS> ")
    assert "web:max" not in message.text and "abc" not in message.text


def _first_screen(blocks: list[dict[str, Any]]) -> tuple[str, list[str]]:
    """The text of the blocks before the payload, and the buttons among them."""
    payload = next(i for i, b in enumerate(blocks) if "*Action* `" in text_of([b]))
    before = blocks[:payload]
    return text_of(before), [a for a, _ in buttons(before)]


def test_the_first_screen_decides_before_any_payload() -> None:
    """Summary, amount, reasons in words, recommendation with confidence, who decides, what
    the deadline does and the buttons all come before the payload."""
    deadline = NOW + timedelta(hours=4)
    message = cards.card_message(view_of(request()))
    first, clicks = _first_screen(message.blocks)
    assert message.blocks[0]["type"] == "header"
    assert message.blocks[0]["text"]["text"] == "🔴 Pay INV-123 to ACME — $5,000.00"
    for words in [
        "Large payment* — A payment of 5,000 USD is over the 500 limit",
        "Regulated area* — This touches a regulated area (financial)",
        "*Agent recommends:* pay · 62% confident",
        "Needs two different people from tier manager or above — 0 of 2 approved\n",
        f"Rejected automatically at <!date^{int(deadline.timestamp())}^{{time}}, "
        "{date_short_pretty}|2026-01-05 13:00 UTC> if no one decides",
    ]:
        assert words in first, words
    assert clicks == ["signoff_approve", "signoff_reject", "signoff_modify", "signoff_details"]
    assert '"invoice"' not in first and "INV-123*" not in first

    # A tier below the top one: the deadline moves the item on instead of ending it.
    junior = cards.card_message(view_of(request(tier="junior"), tier="junior"))
    assert "Goes to tier senior at <!date^" in _first_screen(junior.blocks)[0]


def test_after_a_modify_the_card_shows_old_and_new_and_the_new_amount() -> None:
    edited = Action("payment", "Pay INV-123 to ACME", {"invoice": "INV-123", "amount": 4500})
    req = request(
        modified_action=edited,
        votes=(vote(Verdict.MODIFY, "Dan", "half is disputed", digest=edited.sha256),),
    )
    message = cards.card_message(view_of(req))
    valid_blocks(message.blocks)
    first, _ = _first_screen(message.blocks)
    assert message.blocks[0]["text"]["text"] == "🔴 Pay INV-123 to ACME — $4,500.00"
    assert "Changed by a reviewer" in first and "`amount`: ~5000~ → *4500*" in first
    text = text_of(message.blocks)
    assert "as edited by a reviewer" in text and "*amount:* 4500" in text
    assert "Edited and approved* by Dan" in text and "1 of 2 approved, by Dan" in text


def test_nested_payload_values_are_compact_and_the_whole_json_is_in_details() -> None:
    payload = {"vendor": {"id": "V-1", "iban": "DE00"}, "lines": [1, 2], "note": "<!here>"}
    req = request(action=Action("payment", "Pay", payload))
    text = text_of(cards.card_message(view_of(req)).blocks)
    assert '*vendor:* {"id":"V-1","iban":"DE00"}' in text
    assert "*lines:* [1,2]" in text and "*note:* &lt;!here&gt;" in text
    details = text_of(cards.details_modal(view_of(req))["blocks"])
    assert '"iban": "DE00"' in details


def test_edits_do_not_ping_and_votes_show_who_when_why() -> None:
    req = request(votes=(vote(Verdict.APPROVE, "Dan", "IBAN checked"),))
    message = cards.card_message(view_of(req))
    valid_blocks(message.blocks)
    assert "<@" not in message.text
    text = text_of(message.blocks)
    assert "1 of 2 approved, by Dan" in text and "IBAN checked" in text
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
    first, _ = _first_screen(message.blocks)
    assert "already went ahead" in first and "Spot check after the fact" in first
    assert "lane" not in text_of(message.blocks).lower()


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"status": Status.APPROVED, "votes": (vote(Verdict.APPROVE),)}, "Approved* by Dan"),
        ({"status": Status.REJECTED, "votes": (vote(Verdict.REJECT, rationale="no PO"),)}, "no PO"),
        ({"status": Status.EXPIRED}, "no one decided before the last tier's deadline"),
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
    assert says in text_of(message.blocks[:2])  # the header and the first section say it
    assert "<@" not in message.text  # nobody is pinged about a closed item


def test_an_escalated_card_loses_its_buttons_and_names_the_new_tier() -> None:
    req = request(tier="senior")
    message = cards.card_message(view_of(req, tier="junior", note="Escalated to senior"))
    valid_blocks(message.blocks)
    assert buttons(message.blocks) == []
    assert message.blocks[0]["text"]["text"].startswith("⤴️ Moved to tier senior: ")
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
    assert "<@U0DDD> <@U0EEE> <!subteam^S0LEADS>" in message.text  # our own pings survive


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
    assert len(message.blocks[0]["text"]["text"]) <= cards.MAX_HEADER
    assert INBOX in text_of(message.blocks)
    first, clicks = _first_screen(message.blocks)
    assert "…and 395 more (Details)" in first and clicks[0] == "signoff_approve"
    assert "…and 1975 more fields (Details)" in text_of(message.blocks)


def test_the_details_modal_shows_everything_that_fits_then_links_the_inbox() -> None:
    small = cards.details_modal(view_of(request()))
    valid_view(small)
    assert small["callback_id"] == "signoff_details"
    text = text_of(small["blocks"])
    for fact in [
        "please pay ACME",
        "C-9",
        "wait for the PO owner",
        "pay half",
        "manager",
        "Large payment",  # the card's own words first
        "Rejected automatically at",
    ]:
        assert fact in text, fact
    assert "Shortened" not in text

    huge = cards.details_modal(view_of(request(context=HUGE_CONTEXT)))
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


def test_reminders_ping_the_tiers_reviewers_and_say_what_the_deadline_does() -> None:
    text = cards.reminder_text(view_of(request()))
    assert text.startswith("⏰ <@U0DDD> <@U0EEE> <!subteam^S0LEADS> Still waiting")
    assert "Pay INV-123 to ACME — $5,000.00" in text
    assert "Rejected automatically at <!date^" in text


def test_the_app_home_and_pending_show_the_queue_with_the_card_buttons() -> None:
    items = [view_of(request(id=f"req_{i}")) for i in range(25)]
    home = cards.home_view(items, 25)
    View(**home).validate_json()
    valid_blocks(home["blocks"], limit=100)  # a home view holds twice a message's blocks
    assert home["type"] == "home"
    text = text_of(home["blocks"])
    assert "Waiting for you" in text and "25 items waiting for you" in text
    assert "<http://signoff.test/requests/req_0|🔴 Pay INV-123 to ACME — $5,000.00>" in text
    assert "Large payment" in text and "Rejected automatically at <!date^" in text
    assert text.count("Needs two different people") == cards.HOME_SHOWN
    assert "…and 5 more in the web inbox." in text
    rows = [b for b in home["blocks"] if b["type"] == "actions"]
    assert rows[0]["block_id"] == "signoff_item:req_0"
    assert [(e["action_id"], e["value"]) for e in rows[0]["elements"]] == [
        ("signoff_approve", "req_0"),
        ("signoff_reject", "req_0"),
        ("signoff_modify", "req_0"),
        ("signoff_details", "req_0"),
    ]

    pending = cards.pending_message(items, 25)
    valid_blocks(pending.blocks)
    assert pending.text == "25 items waiting for you"
    assert len([b for b in pending.blocks if b["type"] == "actions"]) == cards.PENDING_SHOWN
    assert "…and 10 more in the web inbox." in text_of(pending.blocks)

    empty = cards.home_view([], 0)
    View(**empty).validate_json()
    assert "Nothing is waiting for you" in text_of(empty["blocks"])
    assert cards.pending_message([], 0).text.startswith("Nothing is waiting")


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


def test_allow_similar_is_offered_where_a_grant_could_cover_the_item() -> None:
    single = request(approvals_required=1)
    assert cards.ALLOW_SIMILAR in _ids(cards.card_message(view_of(single)).blocks)
    assert cards.ALLOW_SIMILAR not in _ids(cards.card_message(view_of(request())).blocks)
    review = request(approvals_required=1, lane=Lane.REVIEW)
    assert cards.ALLOW_SIMILAR not in _ids(cards.card_message(view_of(review)).blocks)


def test_the_allow_similar_modal_asks_a_high_risk_item_to_allow_high() -> None:
    item = request(approvals_required=1)
    form = prefilled(item)
    assert form.when == 'amount <= 5000.0 && domain == "financial"'
    modal = similar_modal.modal(item, form, external_id="signoff:C0MGR:1.2")
    valid_view(modal)
    [high] = [b for b in modal["blocks"] if b.get("block_id") == "allow_high"]
    assert high["optional"] is True and "initial_options" not in high["element"]
    assert similar_modal.parse_metadata(modal) == ("req_01test", "high")
    state = {
        "allow_high": {"allow_high": {"type": "checkboxes", "selected_options": [{"value": "on"}]}},
        "reason": {"reason": {"type": "plain_text_input", "value": " month end "}},
    }
    fields = similar_modal.submitted({"state": {"values": state}}, "high")
    assert fields == {
        "max_risk": "high",
        "when": "",
        "ttl": "",
        "max_uses": "",
        "reason": " month end ",
        "allow_high": "on",
    }
    ticked = similar_modal.modal(item, dataclasses.replace(form, allow_high=True))
    [high] = [b for b in ticked["blocks"] if b.get("block_id") == "allow_high"]
    assert high["element"]["initial_options"] == high["element"]["options"]
    assert "allow_high" not in json.dumps(similar_modal.modal(request(risk=Risk.LOW), form))


def _ids(blocks: list[dict[str, Any]]) -> list[str]:
    return [e["action_id"] for b in blocks if b["type"] == "actions" for e in b["elements"]]
