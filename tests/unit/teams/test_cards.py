"""Every Teams card Signoff can draw is a valid Adaptive Card 1.5 with the contract's ids,
and its first screen decides: what, how much, why, the agent's advice, who, the deadline,
then the buttons, all before the payload."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from adapters.teams import _elements as elements
from adapters.teams import cards
from bot.core.domain import Action, ApprovalRequest, ReviewStatus, Status, Verdict, Vote
from bot.core.similar import SimilarForm
from bot.core.views import CardView, CardViews
from bot.core.wording import Wording
from routing import Lane, ReviewState, Risk, RoutingPolicy, Rule, TierSpec, compile_policy
from tests.unit.teams import schema

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
TIERS = ("junior", "senior", "manager")
POLICY = compile_policy(
    RoutingPolicy(
        rules=(
            Rule(
                name="high_value_transaction",
                when='action.kind == "payment" && amount > 500.0',
                title="Large payment",
                explain="Payment of {amount} {currency} is over the 500 limit",
            ),
            Rule(name="regulated_domain", when='domain == "finance"', title="Regulated domain"),
        )
    ),
    (
        TierSpec(
            name="junior",
            sla=timedelta(minutes=15),
            reviewers=("teams:aad-1", "web:jan", "teams:aad-2"),
        ),
        TierSpec(name="senior", sla=timedelta(hours=1), reviewers=("teams:aad-3",)),
        TierSpec(name="manager", sla=timedelta(hours=4), reviewers=("teams:aad-4",)),
    ),
)
WORDING = Wording(POLICY)
VIEWS = CardViews(POLICY, "http://127.0.0.1:8000", WORDING)
DEADLINE = "2026-01-05T09:15:00Z"
PAYLOAD_LABEL = "What the agent wants to do"


def assert_valid(validator: jsonschema.Draft6Validator, card: dict[str, Any]) -> None:
    assert validator is schema.validator()
    schema.assert_adaptive_card(card)
    assert len(json.dumps(card, ensure_ascii=False).encode()) <= elements.MAX_CARD_BYTES


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
    """The copy of `req` at `tier`, in the words the engine gives it (CardViews)."""
    built = VIEWS.view(req, tier, "19:junior@thread.tacv2")
    return dataclasses.replace(built, **overrides)


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


def text_of(node: Any) -> str:
    return " ".join(str(n.get("text", "")) for n in walk(node))


def first_screen(card: dict[str, Any]) -> list[dict[str, Any]]:
    """The body up to the payload's label: what a reviewer reads before scrolling."""
    body: list[dict[str, Any]] = card["body"]
    at = next(i for i, e in enumerate(body) if PAYLOAD_LABEL in str(e.get("text", "")))
    return body[:at]


def line(element: dict[str, Any]) -> str:
    """The text of one RichTextBlock, its runs joined."""
    return "".join(run["text"] for run in element["inlines"])


def button_rows(card: dict[str, Any]) -> list[list[str]]:
    return [[a["title"] for a in e["actions"]] for e in card["body"] if e["type"] == "ActionSet"]


# -- the first screen ----------------------------------------------------------------------


def test_the_first_screen_decides_before_any_payload(
    validator: jsonschema.Draft6Validator,
) -> None:
    card = cards.card(view(request(domain="finance")))
    assert_valid(validator, card)
    screen = first_screen(card)
    words = text_of(screen)
    assert "Approval needed: " in words and "Pay INV-123 to ACME" in words  # what
    facts = {f["title"]: f["value"] for f in screen if f["type"] == "FactSet" for f in f["facts"]}
    assert facts["Amount"] == "$5,000.00"  # how much, as money
    assert "Large payment" in words  # why, by title
    assert "Payment of 5,000 USD is over the 500 limit" in words  # why, in a sentence
    assert "Regulated domain" in words
    assert "pay it" in words and "62% confident" in words  # the agent's advice
    assert "Needs two different people from tier junior or above — 0 of 2 approved" in words
    # The deadline's consequence, the time written by each reader's own client.
    [deadline] = [e for e in screen if "if no one decides" in str(e.get("text", ""))]
    assert deadline["type"] == "TextBlock"  # only TextBlocks evaluate DATE() and TIME()
    assert deadline["text"] == (
        f"⏰ Goes to tier senior at {{{{TIME({DEADLINE})}}}} on "
        f"{{{{DATE({DEADLINE}, SHORT)}}}} if no one decides"
    )
    # Then the buttons: the rationale box and the verdicts come before the payload.
    kinds = [e["type"] for e in screen]
    assert kinds[-2:] == ["Input.Text", "ActionSet"]
    assert [a["title"] for a in screen[-1]["actions"]] == ["Approve", "Reject", "Modify…"]
    assert set(executes({"body": screen})) == {"approve", "reject", "modify"}
    assert "actions" not in card  # a card's own actions are drawn below everything


def test_no_lane_and_no_rule_identifiers_on_any_card(
    validator: jsonschema.Draft6Validator,
) -> None:
    req = request(domain="finance")
    shown = [
        cards.card(view(req)),
        cards.card(view(dataclasses.replace(req, tier="senior"))),
        cards.card(view(dataclasses.replace(req, status=Status.REJECTED, decided_at=NOW))),
        cards.reminder_card(view(req), cards.mentions(view(req))),
    ]
    for card in shown:
        assert_valid(validator, card)
        text = json.dumps(card, ensure_ascii=False)
        assert "high_value_transaction" not in text and "regulated_domain" not in text
        assert not re.search(r"\blane\b", text, re.IGNORECASE)


def test_below_the_buttons_the_payload_as_labelled_fields_then_votes(
    validator: jsonschema.Draft6Validator,
) -> None:
    payload = {"invoice": "INV-123", "vendor": {"name": "ACME", "iban": "DE00"}, "lines": [1, 2]}
    req = request(action=Action("payment", "Pay INV-123", payload))
    req = dataclasses.replace(req, votes=(vote("teams:aad-1", Verdict.REJECT, "no PO"),))
    card = cards.card(view(req))
    assert_valid(validator, card)
    body = card["body"]
    start = len(first_screen(card))
    assert body[start]["text"] == f"{PAYLOAD_LABEL} (payment)"
    lines = ["".join(r["text"] for r in e["inlines"]) for e in body[start + 1 : start + 4]]
    assert lines == [
        "Invoice: INV-123",
        'Vendor: {"iban": "DE00", "name": "ACME"}',  # nested: compact, JSON in Details
        "Lines: [1, 2]",
    ]
    votes = next(i for i, e in enumerate(body) if e.get("text") == "Votes")
    assert votes > start
    assert "TEAMS:AAD-1 rejected: “no PO”" in text_of(body[votes + 1])
    assert body[votes + 2]["text"] == f"{{{{TIME({NOW:%Y-%m-%dT%H:%M:%SZ})}}}} on " + (
        f"{{{{DATE({NOW:%Y-%m-%dT%H:%M:%SZ}, SHORT)}}}}"
    )
    assert button_rows(card)[-1] == ["Details (JSON)", "Open in inbox"]
    details = next(a for a in body[-1]["actions"] if a["title"] == "Details (JSON)")
    assert '"iban": "DE00"' in text_of(details)


def test_after_a_modify_the_header_shows_the_change_and_the_new_amount(
    validator: jsonschema.Draft6Validator,
) -> None:
    req = request(
        action=Action("payment", "Pay ACME", {"amount": 950, "to": "ACME"}),
        amount=950.0,
        approvals_required=2,
    )
    edited = Action("payment", "Pay ACME", {"amount": 900, "to": "ACME"})
    modified = dataclasses.replace(
        req,
        modified_action=edited,
        votes=(
            dataclasses.replace(
                vote("teams:aad-1", Verdict.MODIFY, "agreed discount"),
                action_sha256=edited.sha256,
            ),
        ),
    )
    card = cards.card(view(modified))
    assert_valid(validator, card)
    screen = first_screen(card)
    [change] = [e for e in screen if e["type"] == "RichTextBlock" and "→" in text_of(e)]
    runs = [r["text"] for r in change["inlines"]]
    assert runs == ["amount: ", "950", " → ", "900"]
    assert change["inlines"][1]["strikethrough"] is True
    facts = {f["title"]: f["value"] for e in screen if e["type"] == "FactSet" for f in e["facts"]}
    assert facts["Amount"] == "$900.00"
    assert "1 of 2 approved, by TEAMS:AAD-1" in text_of(screen)
    modify = executes(card)["modify"]
    assert modify["data"] == {"request_id": "req_01test", "tier": "junior"}
    edit = next(n for n in walk(card) if n.get("id") == "modified_payload")
    assert '"amount": 900' in edit["value"]  # the edit starts from the current payload


# -- every state ---------------------------------------------------------------------------


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
    assert facts == {"Amount": "$5,000.00", "Agent": "invoice-bot", "Risk": "🔴 high"}
    rationale = next(n for n in walk(card) if n.get("id") == "rationale")
    assert rationale["isRequired"] is True  # high risk: every verdict needs one
    assert button_rows(card) == [
        ["Approve", "Reject", "Modify…"],
        ["Details (JSON)", "Open in inbox"],
    ]
    assert "ACME invoice for March" in text_of(card) and "amount above my limit" in text_of(card)


def test_low_risk_rationale_is_optional_for_approve(validator: jsonschema.Draft6Validator) -> None:
    req = request(risk=Risk.LOW, amount=0.0, reasons=(), context={}, approvals_required=1)
    card = cards.card(view(req))
    assert_valid(validator, card)
    rationale = next(n for n in walk(card) if n.get("id") == "rationale")
    assert "isRequired" not in rationale
    facts = {f["title"]: f["value"] for f in card["body"][1]["facts"]}
    assert "Amount" not in facts
    assert "Why you see this" not in text_of(card)
    assert "62% confident" in text_of(first_screen(card))
    assert "Needs one person from tier junior or above" in text_of(card)


def test_the_last_tier_says_what_its_deadline_does(validator: jsonschema.Draft6Validator) -> None:
    card = cards.card(view(request(tier="manager"), "manager"))
    assert_valid(validator, card)
    assert "⏰ Rejected automatically at {{TIME(" in text_of(first_screen(card))


def test_agent_text_is_never_markdown(validator: jsonschema.Draft6Validator) -> None:
    sneaky = "**Urgent** [click here](http://evil.example) to approve"
    req = request(
        action=Action("payment", sneaky, {sneaky: sneaky}),
        currency=sneaky,
        context={"recommendation": sneaky, "summary": sneaky},
        question=sneaky,
    )
    card = cards.card(view(req))
    assert_valid(validator, card)
    runs = [n for n in walk(card) if n.get("type") == "TextRun" and "[click here]" in n["text"]]
    assert len(runs) >= 5, "agent text must be TextRuns, which Teams never reads as markdown"
    blocks = [n for n in walk(card) if n.get("type") == "TextBlock" and "[click" in n["text"]]
    assert blocks == []


def test_votes_so_far_and_two_person_count(validator: jsonschema.Draft6Validator) -> None:
    req = request()
    digest = req.current_action.sha256
    first = dataclasses.replace(
        vote("teams:aad-1", Verdict.APPROVE, "checked PO"), action_sha256=digest
    )
    card = cards.card(view(dataclasses.replace(req, votes=(first,))))
    assert_valid(validator, card)
    assert "1 of 2 approved, by TEAMS:AAD-1" in text_of(first_screen(card))
    assert "TEAMS:AAD-1 approved: “checked PO”" in text_of(card)


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
    assert set(executes(first_screen(card)[-1])) == {"confirm", "reverse"}
    assert inputs(card) == {"rationale"}
    assert "Review:" in text_of(card)
    assert "Needs one person from tier junior or above to confirm or reverse it" in text_of(card)


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
def test_final_cards_say_the_outcome_in_the_wording_and_have_no_actions(
    validator: jsonschema.Draft6Validator,
    status: Status,
    review_status: ReviewStatus | None,
    word: str,
) -> None:
    votes = (vote("teams:aad-1", Verdict.REJECT, "too much"),)
    req = request(status=status, review_status=review_status, decided_at=NOW, votes=votes)
    card = cards.card(view(req))
    assert_valid(validator, card)
    assert executes(card) == {} and inputs(card) == set() and button_rows(card) == []
    outcome = WORDING.outcome(req)
    assert outcome.label == word
    headline = "".join(run["text"] for run in card["body"][0]["inlines"])
    assert headline == f"{outcome.icon} {word}: Pay INV-123 to ACME"
    assert "too much" in text_of(card)
    assert f"Decided at {{{{TIME({NOW:%Y-%m-%dT%H:%M:%SZ})}}}}" in text_of(card)


def test_a_rejected_card_names_who_rejected_and_why(validator: jsonschema.Draft6Validator) -> None:
    votes = (vote("teams:aad-1", Verdict.REJECT, "too much"),)
    req = request(status=Status.REJECTED, decided_at=NOW, votes=votes)
    card = cards.card(view(req))
    assert_valid(validator, card)
    assert line(card["body"][1]) == "❌ Rejected by TEAMS:AAD-1"
    assert line(card["body"][2]) == "“too much”"
    expired = cards.card(view(request(status=Status.EXPIRED, decided_at=NOW)))
    assert line(expired["body"][1]) == (
        "⌛ Expired: no one decided before the last tier's deadline"
    )


def test_escalated_card(validator: jsonschema.Draft6Validator) -> None:
    req = request(tier="senior")
    card = cards.card(view(req, "junior"))
    assert_valid(validator, card)
    assert executes(card) == {} and inputs(card) == set()
    assert "Escalated to senior" in text_of(card)


@pytest.mark.parametrize("tone", ["good", "attention", "warning"])
def test_message_banner(validator: jsonschema.Draft6Validator, tone: elements.Tone) -> None:
    card = cards.card(view(request()), message="Not recorded: a rationale is required", tone=tone)
    assert_valid(validator, card)
    assert card["body"][1]["style"] == tone
    assert "Not recorded: a rationale is required" in text_of(card)
    assert set(executes(card)) == {"approve", "reject", "modify"}


def test_question_and_reject_options(validator: jsonschema.Draft6Validator) -> None:
    req = request(
        question="Which account?",
        response_schema={"type": "string", "enum": ["ops", "capex"]},
        reject_options=("duplicate", "no PO"),
    )
    card = cards.card(view(req))
    assert_valid(validator, card)
    assert "Which account?" in text_of(first_screen(card))
    assert button_rows(card)[0] == ["Answer…", "Approve", "Reject…", "Modify…"]
    assert inputs(card) == {"rationale", "modified_payload", "response", "reject_option"}


def test_huge_context_is_clipped_to_fit(validator: jsonschema.Draft6Validator) -> None:
    context = {
        "summary": "x" * 50_000,
        "conversation": [{"role": "user", "content": "é" * 2_000} for _ in range(200)],
        "alternatives": [f"option {i}" for i in range(100)],
        "customer": {"notes": "🙂" * 10_000},
        "recommendation": "r" * 10_000,
    }
    payload = {f"field{i}": "b" * 2_000 for i in range(40)}
    req = request(
        context=context,
        action=Action("payment", "S" * 5_000, payload),
        votes=tuple(vote(f"teams:aad-{i}", Verdict.APPROVE, "r" * 3_000) for i in range(30)),
    )
    card = cards.card(view(req), message="m" * 5_000)
    assert_valid(validator, card)
    assert "too large to edit in Teams" in text_of(card)
    assert "… and 95 more (see Details)" in text_of(card)
    assert "… and 28 more fields (see Details)" in text_of(card)


def test_nothing_but_garbage_still_fits(validator: jsonschema.Draft6Validator) -> None:
    context = {f"key{i}": "z" * 3_000 for i in range(100)}
    card = cards.card(view(request(context=context)))
    assert_valid(validator, card)
    details = next(n for n in walk(card) if n.get("title") == "Details (JSON)")
    assert "the rest is in the web inbox" in text_of(details)


def test_stamp_is_the_strict_form_the_date_functions_read() -> None:
    at = datetime(2026, 12, 7, 18, 0, 0, 123456, tzinfo=UTC) + timedelta(hours=-1)
    assert elements.stamp(at) == (
        "{{TIME(2026-12-07T17:00:00Z)}} on {{DATE(2026-12-07T17:00:00Z, SHORT)}}"
    )


def test_mentions_only_teams_reviewers() -> None:
    found = cards.mentions(view(request()))
    assert [(m.text, m.id) for m in found] == [
        ("<at>Reviewer 1</at>", "aad-1"),
        ("<at>Reviewer 2</at>", "aad-2"),
    ]
    assert elements.clip("abc", 3) == "abc"
    assert elements.clip("abcdef", 4) == "abc…"
    assert elements.clip("abc", 0) == ""


def test_reminder_card_uses_the_same_words(validator: jsonschema.Draft6Validator) -> None:
    current = view(request())
    found = cards.mentions(current)
    card = cards.reminder_card(current, found)
    assert_valid(validator, card)
    assert card["body"][0]["text"] == (
        "⏰ <at>Reviewer 1</at> <at>Reviewer 2</at> still waiting for your verdict:"
    )
    words = text_of(card)
    assert "Pay INV-123 to ACME" in words
    assert {"title": "Amount", "value": "$5,000.00"} in card["body"][2]["facts"]
    assert "Needs two different people" in words
    assert f"Goes to tier senior at {{{{TIME({DEADLINE})}}}}" in words
    assert [e["mentioned"]["id"] for e in card["msteams"]["entities"]] == ["aad-1", "aad-2"]
    assert cards.reminder_summary(current) == (
        "⏰ Still waiting for a verdict on “Pay INV-123 to ACME” ($5,000.00)"
    )
    alone = cards.reminder_card(current, ())
    assert_valid(validator, alone)
    assert alone["body"][0]["text"] == "⏰ still waiting for your verdict:"
    assert "msteams" not in alone


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


def test_allow_similar_sits_behind_a_show_card_prefilled_from_the_item(
    validator: jsonschema.Draft6Validator,
) -> None:
    item = request(approvals_required=1)
    card = cards.card(view(item))
    assert_valid(validator, card)
    [show] = [n for n in walk(card) if n.get("title") == "Approve + allow similar…"]
    assert show["type"] == "Action.ShowCard"
    fields = {n["id"]: n for n in walk(show["card"]) if str(n.get("type")).startswith("Input.")}
    assert {k: v.get("value") for k, v in fields.items()} == {
        "when": "amount <= 5000.0",
        "ttl": "2h",
        "max_uses": "10",
        "reason": None,
        "allow_high": "off",  # a high-risk item: the grant must say so
    }
    assert fields["reason"]["isRequired"] is True
    assert fields["allow_high"]["type"] == "Input.Toggle"
    submit = executes(show["card"])["allow_similar"]
    assert submit["data"] == {"request_id": "req_01test", "tier": "junior", "max_risk": "high"}
    assert submit["fallback"]["data"]["verb"] == "allow_similar"

    # What the clicker typed is drawn back after a refusal.
    typed = cards.card(view(item), similar=SimilarForm(when="amount <=", reason="why not"))
    assert_valid(validator, typed)
    assert {"amount <=", "why not"} <= {n.get("value") for n in walk(typed)}

    low = request(approvals_required=1, risk=Risk.LOW)
    assert "allow_high" not in inputs(cards.card(view(low)))
    for unlike in (request(), request(approvals_required=1, lane=Lane.REVIEW)):
        assert "allow_similar" not in executes(cards.card(view(unlike)))
