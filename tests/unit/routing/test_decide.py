"""decide() on the seed's examples and on the edges of contract section 4."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from routing import (
    DEFAULT_TIERS,
    Lane,
    ReviewState,
    Risk,
    RoutingDecision,
    RoutingPolicy,
    Rule,
    RuleError,
    TierSpec,
    compile_policy,
    confidence_lane,
    decide,
    default_policy,
    sampled,
)
from tests.unit.routing.helpers import make_input, policy_with

POLICY = default_policy()


def test_clean_invoice_at_high_confidence_goes_autonomous() -> None:
    decision = decide(make_input(confidence=0.9), POLICY)

    assert decision == RoutingDecision(
        status="approved",
        lane=Lane.AUTONOMOUS,
        risk=Risk.LOW,
        reasons=(),
        tier=None,
        approvals_required=1,
        review=ReviewState.NONE,
    )
    assert not decision.needs_card


def test_medium_confidence_goes_to_review_and_is_queued_at_the_lowest_tier() -> None:
    decision = decide(make_input(confidence=0.6), POLICY)

    assert decision.status == "approved"
    assert decision.lane is Lane.REVIEW
    assert decision.risk is Risk.LOW
    assert decision.reasons == ()
    assert decision.review is ReviewState.QUEUED
    assert decision.tier == "junior"
    assert decision.needs_card


def test_low_confidence_escalates_at_medium_risk_to_the_senior_tier() -> None:
    decision = decide(make_input(confidence=0.3), POLICY)

    assert decision == RoutingDecision(
        status="pending",
        lane=Lane.ESCALATE,
        risk=Risk.MEDIUM,
        reasons=("low_confidence",),
        tier="senior",
        approvals_required=1,
        review=ReviewState.NONE,
    )
    assert decision.needs_card


@pytest.mark.parametrize(
    ("confidence", "lane"),
    [(0.8, Lane.AUTONOMOUS), (0.7999, Lane.REVIEW), (0.5, Lane.REVIEW), (0.4999, Lane.ESCALATE)],
)
def test_thresholds_are_inclusive(confidence: float, lane: Lane) -> None:
    assert decide(make_input(confidence=confidence), POLICY).lane is lane


def test_nan_confidence_takes_the_safe_lane() -> None:
    decision = decide(make_input(confidence=float("nan")), POLICY)

    assert decision.lane is Lane.ESCALATE
    assert decision.reasons == ("low_confidence",)


@pytest.mark.parametrize(
    ("confidence", "lane"),
    [(0.7, Lane.AUTONOMOUS), (0.69, Lane.REVIEW), (0.4, Lane.REVIEW), (0.39, Lane.ESCALATE)],
)
def test_confidence_lane_uses_the_thresholds_it_is_given(confidence: float, lane: Lane) -> None:
    assert confidence_lane(confidence, 0.7, 0.4) is lane


def test_large_payment_escalates_to_the_manager_despite_high_confidence() -> None:
    decision = decide(
        make_input(action_kind="payment", amount=5000, currency="USD", confidence=0.95), POLICY
    )

    assert decision == RoutingDecision(
        status="pending",
        lane=Lane.ESCALATE,
        risk=Risk.HIGH,
        reasons=("high_value_transaction",),
        tier="manager",
        approvals_required=1,
        review=ReviewState.NONE,
    )


def test_small_payment_and_large_non_payment_do_not_trip_the_value_rule() -> None:
    assert decide(make_input(action_kind="payment", amount=500), POLICY).lane is Lane.AUTONOMOUS
    assert decide(make_input(action_kind="invoice", amount=9999), POLICY).lane is Lane.AUTONOMOUS


def test_irreversible_action_needs_two_approvals() -> None:
    decision = decide(make_input(reversible=False, confidence=0.99), POLICY)

    assert decision.reasons == ("irreversible_action",)
    assert decision.risk is Risk.HIGH
    assert decision.approvals_required == 2
    assert decision.tier == "manager"


def test_negative_sentiment_escalates() -> None:
    decision = decide(make_input(sentiment=-0.8), POLICY)

    assert decision.reasons == ("negative_sentiment",)
    assert decision.risk is Risk.HIGH
    assert decide(make_input(sentiment=-0.6), POLICY).lane is Lane.AUTONOMOUS


@pytest.mark.parametrize("domain", ["legal", "medical", "financial"])
def test_regulated_domain_escalates(domain: str) -> None:
    decision = decide(make_input(domain=domain), POLICY)

    assert decision.reasons == ("regulated_domain",)
    assert decision.risk is Risk.HIGH


def test_refund_at_moderate_confidence_is_a_medium_risk_change() -> None:
    decision = decide(make_input(action_kind="refund", confidence=0.65), POLICY)

    assert decision.reasons == ("medium_risk_change",)
    assert decision.risk is Risk.MEDIUM
    assert decision.tier == "senior"
    assert decision.approvals_required == 1


def test_refund_at_high_confidence_is_not_a_medium_risk_change() -> None:
    assert decide(make_input(action_kind="refund", confidence=0.7), POLICY).lane is Lane.REVIEW


def test_several_rules_report_every_reason_in_rule_order_with_max_risk_and_approvals() -> None:
    decision = decide(
        make_input(
            action_kind="payment",
            amount=5000,
            reversible=False,
            sentiment=-0.9,
            domain="financial",
            confidence=0.99,
        ),
        POLICY,
    )

    assert decision.reasons == (
        "high_value_transaction",
        "irreversible_action",
        "negative_sentiment",
        "regulated_domain",
    )
    assert decision.risk is Risk.HIGH
    assert decision.approvals_required == 2
    assert decision.tier == "manager"


def test_highest_risk_wins_regardless_of_rule_order() -> None:
    policy = policy_with(
        Rule(name="big", when="amount > 10.0", risk=Risk.HIGH, approvals=3),
        Rule(name="any", when="amount > 0.0", risk=Risk.LOW),
        Rule(name="mid", when="amount > 1.0", risk=Risk.MEDIUM),
    )

    decision = decide(make_input(amount=100), policy)

    assert decision.reasons == ("big", "any", "mid")
    assert decision.risk is Risk.HIGH
    assert decision.approvals_required == 3


def test_a_low_risk_rule_still_escalates_and_starts_at_the_low_tier() -> None:
    policy = policy_with(Rule(name="flagged", when='labels.flag == "yes"', risk=Risk.LOW))

    decision = decide(make_input(labels={"flag": "yes"}, confidence=1.0), policy)

    assert decision.lane is Lane.ESCALATE
    assert decision.status == "pending"
    assert decision.risk is Risk.LOW
    assert decision.tier == "junior"


def test_stopped_agent_is_rejected_before_any_rule_runs() -> None:
    policy = policy_with(Rule(name="broken", when="1 / 0 == 1"))

    decision = decide(make_input(agent_stopped=True, reversible=False), policy)

    assert decision == RoutingDecision(
        status="rejected",
        lane=Lane.ESCALATE,
        risk=Risk.HIGH,
        reasons=("agent_stopped",),
        tier=None,
        approvals_required=1,
        review=ReviewState.NONE,
    )
    assert not decision.needs_card


class TestRuleErrors:
    def test_missing_map_key_fails_safe(self) -> None:
        policy = policy_with(Rule(name="gold", when='labels.missing == "x"', risk=Risk.LOW))

        decision = decide(make_input(confidence=0.99), policy)

        assert decision.status == "pending"
        assert decision.lane is Lane.ESCALATE
        assert decision.risk is Risk.HIGH
        assert decision.reasons == ("rule_error:gold",)
        assert decision.tier == "manager"
        assert decision.rule_errors == (RuleError("gold", "KeyError: 'missing'"),)

    def test_division_by_zero_fails_safe(self) -> None:
        decision = decide(make_input(), policy_with(Rule(name="div", when="1 / 0 == 1")))

        assert decision.reasons == ("rule_error:div",)
        (error,) = decision.rule_errors
        assert error.rule == "div"
        assert error.message.startswith("ZeroDivisionError")

    def test_non_bool_result_fails_safe(self) -> None:
        decision = decide(make_input(amount=12.5), policy_with(Rule(name="num", when="amount")))

        assert decision.reasons == ("rule_error:num",)
        assert decision.rule_errors == (RuleError("num", "returned float 12.5, not a bool"),)

    def test_long_non_bool_result_is_abbreviated(self) -> None:
        policy = policy_with(Rule(name="text", when="action.summary"))

        decision = decide(make_input(action_summary="x" * 10_000), policy)

        (error,) = decision.rule_errors
        assert len(error.message) < 100

    def test_an_erroring_rule_keeps_its_approvals_and_sits_beside_matches(self) -> None:
        policy = policy_with(
            Rule(name="mid", when="true", risk=Risk.MEDIUM),
            Rule(name="broken", when="labels.nope", risk=Risk.LOW, approvals=2),
            Rule(name="quiet", when="false"),
        )

        decision = decide(make_input(), policy)

        assert decision.reasons == ("mid", "rule_error:broken")
        assert decision.risk is Risk.HIGH
        assert decision.approvals_required == 2
        assert [error.rule for error in decision.rule_errors] == ["broken"]

    def test_a_payload_cel_cannot_convert_fails_every_rule_safe(self) -> None:
        # Only a caller inside the process can hand over such a value (JSON cannot); each
        # rule still answers with its own error rather than routing crashing.
        policy = policy_with(Rule(name="a", when="true"), Rule(name="b", when="false"))

        decision = decide(make_input(action_payload={"odd": object()}), policy)

        assert decision.reasons == ("rule_error:a", "rule_error:b")
        assert decision.risk is Risk.HIGH
        assert all("convert" in error.message for error in decision.rule_errors)

    def test_guarded_lookup_does_not_error(self) -> None:
        policy = policy_with(Rule(name="gold", when='has(labels.tier) && labels.tier == "gold"'))

        assert decide(make_input(), policy).lane is Lane.AUTONOMOUS
        assert decide(make_input(labels={"tier": "gold"}), policy).reasons == ("gold",)


class TestCelNumbers:
    """cel compares int with double but refuses to mix them in arithmetic."""

    @pytest.mark.parametrize("when", ["amount > 500", "amount > 500.0"])
    @pytest.mark.parametrize("amount", [5000, 5000.0, 500.5])
    def test_int_and_double_literals_both_compare_with_amount(
        self, when: str, amount: float
    ) -> None:
        policy = policy_with(Rule(name="big", when=when))

        assert decide(make_input(amount=amount), policy).reasons == ("big",)
        assert decide(make_input(amount=500), policy).lane is Lane.AUTONOMOUS

    def test_int_literal_equality_with_a_double_amount(self) -> None:
        policy = policy_with(Rule(name="exact", when="amount == 500"))

        assert decide(make_input(amount=500), policy).reasons == ("exact",)

    def test_mixed_arithmetic_is_a_rule_error_and_double_arithmetic_works(self) -> None:
        mixed = policy_with(Rule(name="mixed", when="amount + 1 > 2"))
        doubles = policy_with(Rule(name="doubles", when="amount + 1.0 > 2.0"))

        assert decide(make_input(amount=5), mixed).reasons == ("rule_error:mixed",)
        assert decide(make_input(amount=5), doubles).reasons == ("doubles",)


def test_rules_see_every_contract_variable() -> None:
    policy = policy_with(
        Rule(name="kind", when='action.kind == "invoice"', risk=Risk.LOW),
        Rule(name="summary", when='action.summary.contains("ACME")', risk=Risk.LOW),
        Rule(name="payload", when='action.payload.invoice == "INV-123"', risk=Risk.LOW),
        Rule(name="agent", when='agent_id == "invoice-bot"', risk=Risk.LOW),
        Rule(name="currency", when='currency == "EUR"', risk=Risk.LOW),
        Rule(name="confidence", when="confidence > 0.85", risk=Risk.LOW),
        Rule(name="reversible", when="reversible", risk=Risk.LOW),
        Rule(name="label", when='labels.customer_tier == "gold"', risk=Risk.LOW),
        Rule(name="ctx", when="context.customer.vip", risk=Risk.LOW),
        Rule(name="many", when="context.alternatives.exists(a, a > 1)", risk=Risk.LOW),
    )

    decision = decide(
        make_input(
            action_payload={"invoice": "INV-123"},
            currency="EUR",
            labels={"customer_tier": "gold"},
            context={"customer": {"vip": True}, "alternatives": [1, 2]},
        ),
        policy,
    )

    assert decision.reasons == tuple(rule.name for rule in policy.routing.rules)
    assert decision.rule_errors == ()


def test_missing_optional_fields_take_the_contract_defaults() -> None:
    policy = policy_with(
        Rule(
            name="defaults",
            when='amount == 0.0 && reversible && sentiment == 0.0 && domain == ""'
            ' && currency == "" && size(labels) == 0 && size(context) == 0'
            " && size(action.payload) == 0",
            risk=Risk.LOW,
        )
    )

    assert decide(make_input(), policy).reasons == ("defaults",)


class TestSampling:
    def test_autonomous_items_are_queued_at_the_lowest_tier_when_sampled(self) -> None:
        policy = policy_with(autonomous_sample_rate=1.0)

        decision = decide(make_input(confidence=0.95), policy)

        assert decision.lane is Lane.AUTONOMOUS
        assert decision.status == "approved"
        assert decision.review is ReviewState.QUEUED
        assert decision.tier == "junior"
        assert decision.needs_card

    def test_autonomous_items_missed_by_a_partial_sample_are_sampled_out(self) -> None:
        request_id = _id_where(lambda rid: not sampled(rid, 0.5))
        policy = policy_with(autonomous_sample_rate=0.5)

        decision = decide(make_input(request_id=request_id, confidence=0.95), policy)

        assert decision.review is ReviewState.SAMPLED_OUT
        assert decision.tier is None
        assert not decision.needs_card

    def test_review_items_missed_by_the_sample_are_sampled_out(self) -> None:
        decision = decide(make_input(confidence=0.6), policy_with(review_sample_rate=0.0))

        assert decision.lane is Lane.REVIEW
        assert decision.status == "approved"
        assert decision.review is ReviewState.SAMPLED_OUT
        assert decision.tier is None
        assert not decision.needs_card

    def test_sampling_follows_the_request_id(self) -> None:
        inside = _id_where(lambda rid: sampled(rid, 0.5))
        outside = _id_where(lambda rid: not sampled(rid, 0.5))
        policy = policy_with(review_sample_rate=0.5)

        for _ in range(3):
            queued = decide(make_input(request_id=inside, confidence=0.6), policy)
            skipped = decide(make_input(request_id=outside, confidence=0.6), policy)
            assert queued.review is ReviewState.QUEUED
            assert skipped.review is ReviewState.SAMPLED_OUT

    def test_start_tier_for_low_risk_places_queued_reviews(self) -> None:
        policy = compile_policy(
            RoutingPolicy(start_tier={"low": "senior"}, review_sample_rate=1.0), DEFAULT_TIERS
        )

        assert decide(make_input(confidence=0.6), policy).tier == "senior"


def test_missing_start_tier_key_falls_back_to_the_lowest_tier() -> None:
    tiers = [TierSpec(name="oncall", sla="30m"), TierSpec(name="lead", sla="2h")]
    policy = compile_policy(RoutingPolicy(start_tier={"high": "lead"}), tiers)

    assert decide(make_input(confidence=0.1), policy).tier == "oncall"
    assert decide(make_input(reversible=False), policy).tier == "lead"


def _id_where(predicate: Callable[[str], bool]) -> str:
    return next(rid for rid in (f"req_{n}" for n in range(1000)) if predicate(rid))
