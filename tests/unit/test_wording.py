"""Words for people: rule titles and sentences, money, who decides, the deadline, diffs."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from bot.core.domain import Action, ApprovalRequest, ReasonText, Status, Verdict, Vote
from bot.core.wording import Wording, payload_changes
from routing import (
    Lane,
    ReviewState,
    Risk,
    RoutingInput,
    RoutingPolicy,
    Rule,
    TierSpec,
    compile_policy,
    decide,
    default_policy,
)

NOW = datetime(2026, 12, 7, 16, 0, tzinfo=UTC)


def payment(amount: float = 5000.0, **fields: object) -> RoutingInput:
    values: dict[str, object] = {
        "request_id": "req_1",
        "agent_id": "invoice-bot",
        "action_kind": "payment",
        "action_summary": "Pay INV-1",
        "confidence": 0.62,
        "amount": amount,
        "currency": "USD",
        **fields,
    }
    return RoutingInput(**values)  # type: ignore[arg-type]


def request_from(inp: RoutingInput, wording: Wording, **fields: object) -> ApprovalRequest:
    decision = decide(inp, wording.policy)
    values: dict[str, object] = {
        "id": inp.request_id,
        "agent_id": inp.agent_id,
        "action": Action(inp.action_kind, inp.action_summary, dict(inp.action_payload)),
        "confidence": inp.confidence,
        "status": Status(decision.status),
        "lane": decision.lane,
        "risk": decision.risk,
        "reasons": decision.reasons,
        "tier": decision.tier,
        "approvals_required": decision.approvals_required,
        "review": decision.review,
        "created_at": NOW,
        "updated_at": NOW,
        "amount": inp.amount,
        "currency": inp.currency,
        "reversible": inp.reversible,
        "reason_texts": wording.explain(decision.reasons, inp),
        **fields,
    }
    return ApprovalRequest(**values)  # type: ignore[arg-type]


def vote(name: str, verdict: Verdict = Verdict.APPROVE, digest: str = "") -> Vote:
    return Vote(f"web:{name}", name, verdict, "", NOW, "web", digest, f"web:{name}")


def test_built_in_rules_read_as_titles_and_sentences() -> None:
    wording = Wording(default_policy())
    texts = wording.explain(("high_value_transaction", "low_confidence"), payment())
    assert texts == (
        ReasonText(
            "high_value_transaction",
            "Large payment",
            "A payment of 5,000 USD is over the 500 limit",
        ),
        ReasonText("low_confidence", "The agent is unsure", "The agent is only 62% sure"),
    )


def test_an_explanation_reads_the_request_in_the_configured_locale() -> None:
    rule = Rule(
        name="big_refund",
        when="amount > 100.0",
        title="Big refund",
        explain="Refund of {amount} {currency} for {labels.customer} ({action.payload.order})",
    )
    policy = compile_policy(RoutingPolicy(rules=(rule,)), default_policy().tiers)
    inp = payment(
        1234.5,
        labels={"customer": "ACME"},
        action_payload={"order": "O-9"},
        action_kind="refund",
    )
    german = Wording(policy, "de_DE").explain(("big_refund",), inp)
    assert german[0].explain == "Refund of 1.234,5 USD for ACME (O-9)"
    missing = Wording(policy).explain(("big_refund",), payment(200.0))
    assert missing[0].explain == "Refund of 200 USD for — (—)"


def test_rule_errors_and_unknown_reasons_still_read_as_words() -> None:
    wording = Wording(default_policy())
    failed, unknown = wording.explain(("rule_error:high_value_transaction", "odd_code"), payment())
    assert failed.title == "Large payment (could not be checked)"
    assert failed.explain == "The rule failed, so a person decides"
    assert (unknown.title, unknown.explain) == ("Odd code", None)


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ("Paid {amonut}", "names no request variable"),
        ("Paid {amount!r}", "is not a variable name"),
        ("Paid {amount", "unbalanced"),
    ],
)
def test_a_bad_explanation_is_refused_when_the_policy_loads(template: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        Rule(name="r", when="true", explain=template)


def test_money_numbers_and_times_follow_the_locale_and_zone() -> None:
    us = Wording(default_policy())
    de = Wording(default_policy(), "de_DE", "Europe/Berlin")
    assert us.money(5000, "usd") == "$5,000.00"
    assert de.money(950.5, "EUR") == "950,50\xa0€"
    assert us.money(12, "") == "12"
    assert us.percent(0.62) == "62%"
    assert us.moment(NOW) == "Mon, Dec 7, 4:00\u202fPM"
    assert de.clock(NOW) == "17:00"
    with pytest.raises(ValueError):
        Wording(default_policy(), "xx_NOPE")


def test_who_decides_counts_people_and_names_those_who_approved() -> None:
    wording = Wording(default_policy())
    two = request_from(payment(reversible=False), wording)
    assert two.approvals_required == 2
    assert wording.who_decides(two) == (
        "Needs two different people from tier manager or above — 0 of 2 approved"
    )
    digest = two.current_action.sha256
    one_in = dataclasses.replace(two, votes=(vote("Ana", digest=digest),))
    assert wording.who_decides(one_in) == (
        "Needs two different people from tier manager or above — 1 of 2 approved, by Ana"
    )
    single = request_from(payment(), wording)
    assert wording.who_decides(single) == "Needs one person from tier manager or above"
    done = dataclasses.replace(
        single, status=Status.APPROVED, votes=(vote("Ana", digest=single.current_action.sha256),)
    )
    assert wording.who_decides(done) == "Approved by Ana"


def test_the_deadline_says_what_will_happen() -> None:
    tiers = (
        TierSpec(name="junior", sla=timedelta(minutes=15)),
        TierSpec(name="manager", sla=timedelta(hours=1)),
    )
    policy = compile_policy(
        RoutingPolicy(
            start_tier={Risk.LOW: "junior", Risk.MEDIUM: "junior", Risk.HIGH: "manager"},
            on_timeout={Risk.LOW: "approve", Risk.MEDIUM: "expire", Risk.HIGH: "reject"},
        ),
        tiers,
    )
    wording = Wording(policy)
    at = NOW + timedelta(hours=1)
    high = request_from(payment(), wording, deadline_at=at)
    deadline = wording.deadline(high)
    assert deadline is not None and deadline.at == at
    assert deadline.sentence(wording.clock(at)) == (
        "Rejected automatically at 5:00\u202fPM if no one decides"
    )
    unsure = request_from(payment(0.0, confidence=0.3), wording, deadline_at=at)
    assert unsure.tier == "junior"
    assert wording.deadline(unsure) == type(deadline)(at, "Goes to tier manager")
    at_top = dataclasses.replace(unsure, tier="manager")
    assert wording.deadline(at_top) == type(deadline)(at, "Expires")
    assert wording.deadline(dataclasses.replace(high, status=Status.REJECTED)) is None


def test_a_spot_check_explains_itself_without_rule_names() -> None:
    wording = Wording(default_policy())
    sampled = request_from(payment(0.0, confidence=0.95), wording)
    sampled = dataclasses.replace(sampled, review=ReviewState.QUEUED, reason_texts=())
    assert sampled.lane is Lane.AUTONOMOUS
    from bot.core.domain import ReviewStatus

    sampled = dataclasses.replace(sampled, review_status=ReviewStatus.OPEN)
    (reason,) = wording.reasons(sampled)
    assert reason.title == "Spot check after the fact"
    assert "lane" not in (reason.explain or "")


def test_payload_changes_list_each_changed_leaf() -> None:
    before = {"amount": 950, "lines": [{"sku": "A", "qty": 1}], "note": "x", "same": True}
    after = {"amount": 900, "lines": [{"sku": "A", "qty": 2}, {"sku": "B"}], "same": True}
    changes = [(c.path, c.old, c.new) for c in payload_changes(before, after)]
    assert changes == [
        ("amount", 950, 900),
        ("lines.0.qty", 1, 2),
        ("lines.1", None, {"sku": "B"}),
        ("note", "x", None),
    ]
    assert payload_changes(before, before) == ()
