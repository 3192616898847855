"""Every Teams card Signoff can draw is a valid Adaptive Card 1.5 with the contract's ids."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from adapters.teams import cards
from bot.core.domain import Action, ApprovalRequest, ReviewStatus, Status, Verdict, Vote
from bot.core.views import CardView
from routing import Lane, ReviewState, Risk
from tests.unit.teams import schema

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
TIERS = ("junior", "senior", "manager")


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft6Validator:
    return schema.validator()


def assert_valid(validator: jsonschema.Draft6Validator, card: dict[str, Any]) -> None:
    assert validator is schema.validator()
    schema.assert_adaptive_card(card)
    assert len(json.dumps(card, ensure_ascii=False).encode()) <= cards.MAX_CARD_BYTES


def request(**overrides: Any) -> ApprovalRequest:
    fields: dict[str, Any] = {
        "id": "req_01test",
        "agent_id": "invoice-bot",
        "action": Action("payment", "Pay INV-123 to ACME", {"invoice": "INV-123", "eur": 5000}),
        "confidence": 0.62,
        "status": Status.PENDING,
        "lane": Lane.ESCALATE,
        "risk": Risk.HIGH,
        "reasons": ("high_value_transaction", "regulated_domain"),
        "tier": "junior",
        "approvals_required": 2,
        "review": ReviewState.NONE,
        "created_at": NOW,
        "updated_at": NOW,
        "amount": 5000.0,
        "currency": "USD",
        "requested_by": "slack:U0REQ",
        "deadline_at": NOW + timedelta(minutes=15),
        "context": {
            "summary": "ACME invoice for March",
            "recommendation": "pay it",
            "alternatives": ["wait a week", "pay half"],
            "failure_reason": "amount above my limit",
            "conversation": [{"role": "user", "content": "please pay"}],
        },
    }
    fields.update(overrides)
    return ApprovalRequest(**fields)


def view(req: ApprovalRequest, tier: str = "junior", **overrides: Any) -> CardView:
    fields: dict[str, Any] = {
        "request": req,
        "tier": tier,
        "target": "19:junior@thread.tacv2",
        "mentions": ("teams:aad-1", "web:jan", "teams:aad-2"),
        "inbox_url": f"http://127.0.0.1:8000/requests/{req.id}",
        "tier_chain": TIERS,
    }
    fields.update(overrides)
    return CardView(**fields)


def vote(reviewer: str, verdict: Verdict, rationale: str = "ok") -> Vote:
    return Vote(reviewer, reviewer.upper(), verdict, rationale, NOW, "teams", "0" * 64)


def walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from walk(item)


def executes(card: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n["verb"]: n for n in walk(card) if n.get("type") == "Action.Execute"}


def inputs(card: dict[str, Any]) -> set[str]:
    return {n["id"] for n in walk(card) if str(n.get("type", "")).startswith("Input.")}


def text_of(card: dict[str, Any]) -> str:
    return " ".join(str(n.get("text", "")) for n in walk(card))


def test_approval_card(validator: jsonschema.Draft6Validator) -> None:
    card = cards.card(view(request()))
    assert_valid(validator, card)
    verbs = executes(card)
    assert set(verbs) == {"approve", "reject", "modify"}
    for verb, action in verbs.items():
        assert action["data"] == {"request_id": "req_01test", "tier": "junior"}
        assert action["fallback"] == {
            "type": "Action.Submit",
            "title": action["title"],
            "data": {"request_id": "req_01test", "tier": "junior", "verb": verb},
            **({"style": action["style"]} if "style" in action else {}),
        }
    assert inputs(card) == {"rationale", "modified_payload"}
    facts = {f["title"]: f["value"] for f in card["body"][1]["facts"]}
    assert facts["Agent"] == "invoice-bot"
    assert facts["Approvals"] == "0 of 2"
    assert facts["Rules fired"] == "high_value_transaction, regulated_domain"
    assert facts["Confidence"] == "62%"
    assert facts["Amount"] == "5,000.00 USD"
    assert facts["Decide by"] == "09:15 UTC, 5 Jan 2026 (then it escalates to senior)"
    rationale = next(n for n in walk(card) if n.get("id") == "rationale")
    assert rationale["isRequired"] is True  # high risk: every verdict needs one
    titles = [a["title"] for a in card["actions"]]
    assert titles == ["Approve", "Reject", "Modify…", "Details", "Open in inbox"]
    assert "pay it" in text_of(card) and "amount above my limit" in text_of(card)


def test_low_risk_rationale_is_optional_for_approve(validator: jsonschema.Draft6Validator) -> None:
    card = cards.card(view(request(risk=Risk.LOW, amount=0.0, reasons=())))
    assert_valid(validator, card)
    rationale = next(n for n in walk(card) if n.get("id") == "rationale")
    assert "isRequired" not in rationale
    facts = {f["title"]: f["value"] for f in card["body"][1]["facts"]}
    assert "Amount" not in facts and facts["Rules fired"] == "none"


def test_agent_text_is_never_markdown(validator: jsonschema.Draft6Validator) -> None:
    sneaky = "**Urgent** [click here](http://evil.example) to approve"
    card = cards.card(view(request(action=Action("payment", sneaky, {}))))
    assert_valid(validator, card)
    runs = [n for n in walk(card) if n.get("type") == "TextRun" and sneaky in n["text"]]
    assert runs, "the summary must be a TextRun, which Teams never reads as markdown"
    blocks = [n for n in walk(card) if n.get("type") == "TextBlock" and sneaky in n["text"]]
    assert blocks == []


def test_votes_so_far_and_two_person_count(validator: jsonschema.Draft6Validator) -> None:
    req = request()
    digest = req.current_action.sha256
    first = dataclasses.replace(
        vote("teams:aad-1", Verdict.APPROVE, "checked PO"), action_sha256=digest
    )
    card = cards.card(view(dataclasses.replace(req, votes=(first,))))
    assert_valid(validator, card)
    facts = {f["title"]: f["value"] for f in card["body"][1]["facts"]}
    assert facts["Approvals"] == "1 of 2"
    assert "TEAMS:AAD-1 approved at 09:00 UTC, 5 Jan 2026: “checked PO”" in text_of(card)


def test_review_card_has_confirm_and_reverse(validator: jsonschema.Draft6Validator) -> None:
    req = request(
        status=Status.APPROVED,
        lane=Lane.REVIEW,
        risk=Risk.MEDIUM,
        review=ReviewState.QUEUED,
        review_status=ReviewStatus.OPEN,
        decided_at=NOW,
    )
    card = cards.card(view(req))
    assert_valid(validator, card)
    assert set(executes(card)) == {"confirm", "reverse"}
    assert inputs(card) == {"rationale"}
    assert "Review:" in text_of(card)


@pytest.mark.parametrize(
    ("status", "review_status", "word"),
    [
        (Status.APPROVED, None, "Approved"),
        (Status.MODIFIED, None, "Approved with changes"),
        (Status.REJECTED, None, "Rejected"),
        (Status.EXPIRED, None, "Expired"),
        (Status.CANCELLED, None, "Cancelled by the agent"),
        (Status.REVERSED, ReviewStatus.REVERSED, "Reversed"),
        (Status.APPROVED, ReviewStatus.CONFIRMED, "Confirmed"),
    ],
)
def test_final_cards_have_no_actions(
    validator: jsonschema.Draft6Validator,
    status: Status,
    review_status: ReviewStatus | None,
    word: str,
) -> None:
    votes = (vote("teams:aad-1", Verdict.REJECT, "too much"),)
    req = request(status=status, review_status=review_status, decided_at=NOW, votes=votes)
    card = cards.card(view(req))
    assert_valid(validator, card)
    assert "actions" not in card and inputs(card) == set()
    headline = "".join(run["text"] for run in card["body"][0]["inlines"])
    assert headline == f"{cards.outcome(req)[0]} {word}: Pay INV-123 to ACME"
    assert "too much" in text_of(card)


def test_escalated_card(validator: jsonschema.Draft6Validator) -> None:
    req = request(tier="senior")
    card = cards.card(view(req, "junior", note="Escalated to senior"))
    assert_valid(validator, card)
    assert "actions" not in card and inputs(card) == set()
    assert "Escalated to senior" in text_of(card)


@pytest.mark.parametrize("tone", ["good", "attention", "warning"])
def test_message_banner(validator: jsonschema.Draft6Validator, tone: cards.Tone) -> None:
    card = cards.card(view(request()), message="Not recorded: a rationale is required", tone=tone)
    assert_valid(validator, card)
    assert card["body"][1]["style"] == tone
    assert "Not recorded: a rationale is required" in text_of(card)
    assert set(executes(card)) == {"approve", "reject", "modify"}


def test_huge_context_is_clipped_to_fit(validator: jsonschema.Draft6Validator) -> None:
    context = {
        "summary": "x" * 50_000,
        "conversation": [{"role": "user", "content": "é" * 2_000} for _ in range(200)],
        "alternatives": [f"option {i}" for i in range(100)],
        "customer": {"notes": "🙂" * 10_000},
    }
    req = request(
        context=context,
        action=Action("payment", "S" * 5_000, {"blob": "b" * 20_000}),
        votes=tuple(vote(f"teams:aad-{i}", Verdict.APPROVE, "r" * 3_000) for i in range(30)),
    )
    card = cards.card(view(req), message="m" * 5_000)
    assert_valid(validator, card)
    assert "too large to edit in Teams" in text_of(card)
    assert "… and 95 more (see Details)" in text_of(card)


def test_nothing_but_garbage_still_fits(validator: jsonschema.Draft6Validator) -> None:
    context = {f"key{i}": "z" * 3_000 for i in range(100)}
    card = cards.card(view(request(context=context)))
    assert_valid(validator, card)
    details = next(a for a in card["actions"] if a["title"] == "Details")
    assert "the rest is in the web inbox" in text_of(details)


def test_mentions_only_teams_reviewers() -> None:
    found = cards.mentions(view(request()))
    assert [(m.text, m.id) for m in found] == [
        ("<at>Reviewer 1</at>", "aad-1"),
        ("<at>Reviewer 2</at>", "aad-2"),
    ]
    assert "Decide by" in cards.reminder_text(view(request()), found)
    assert cards.reminder_text(view(request()), []).startswith("⏰ Reviewers:")


def test_clip() -> None:
    assert cards.clip("abc", 3) == "abc"
    assert cards.clip("abcdef", 4) == "abc…"
    assert cards.clip("abc", 0) == ""
    assert cards.when(None) == "—"


def test_mentions_live_inside_the_card(validator: jsonschema.Draft6Validator) -> None:
    found = cards.mentions(view(request()))
    card = cards.card(view(request()), mentions=found)
    assert_valid(validator, card)
    assert card["msteams"] == {
        "entities": [
            {
                "type": "mention",
                "text": "<at>Reviewer 1</at>",
                "mentioned": {"id": "aad-1", "name": "Reviewer 1"},
            },
            {
                "type": "mention",
                "text": "<at>Reviewer 2</at>",
                "mentioned": {"id": "aad-2", "name": "Reviewer 2"},
            },
        ]
    }
    [block] = [n for n in walk(card["body"]) if "<at>" in str(n.get("text", ""))]
    assert block["type"] == "TextBlock"  # Teams draws card mentions from TextBlocks only
    assert block["text"].startswith("<at>Reviewer 1</at> <at>Reviewer 2</at> ")
    assert "msteams" not in cards.card(view(request()))


@pytest.mark.parametrize(
    ("msteams", "problem"),
    [
        ({"width": "Wide"}, "width"),
        (
            {
                "entities": [
                    {"type": "mention", "text": "Reviewer 1", "mentioned": {"id": "a", "name": "R"}}
                ]
            },
            "text",
        ),
        (
            {"entities": [{"type": "mention", "text": "<at>R</at>", "mentioned": {"id": "a"}}]},
            "name",
        ),
        (
            {
                "entities": [
                    {"type": "hashtag", "text": "<at>R</at>", "mentioned": {"id": "a", "name": "R"}}
                ]
            },
            "type",
        ),
        (
            {
                "entities": [
                    {
                        "type": "mention",
                        "text": "<at>Nobody</at>",
                        "mentioned": {"id": "a", "name": "N"},
                    }
                ]
            },
            "no TextBlock",
        ),
        ({"colour": "red"}, "colour"),
    ],
)
def test_msteams_part_is_checked_on_its_own(msteams: dict[str, Any], problem: str) -> None:
    card = {**cards.card(view(request())), "msteams": msteams}
    with pytest.raises(AssertionError, match=problem):
        schema.assert_adaptive_card(card)


def test_the_generic_schema_alone_refuses_msteams(validator: jsonschema.Draft6Validator) -> None:
    card = cards.card(view(request()), mentions=cards.mentions(view(request())))
    assert list(validator.iter_errors(card)), "the 1.5 schema does not know msteams"
    schema.assert_adaptive_card(card)  # set aside, then checked apart: valid


def test_the_schema_is_the_shared_reference() -> None:
    shared = Path("/work/shared/reference/adaptive-card-1.5.schema.json")
    if not shared.exists():
        pytest.skip(f"{shared} is not on this machine (the copy in tests/ is used)")
    assert schema.SCHEMA_PATH.read_bytes() == shared.read_bytes()
