"""The built-in prediction rule and the `predicted_escalation` variable (prediction active)."""

from __future__ import annotations

import pytest

from routing import (
    DEFAULT_TIERS,
    Lane,
    PolicyError,
    ReviewState,
    RoutingPolicy,
    Rule,
    compile_policy,
    decide,
    default_policy,
    rule_variables,
)
from tests.unit.routing.helpers import make_input

ACTIVE = compile_policy(RoutingPolicy(), DEFAULT_TIERS, predicted_escalation_above=0.7)


@pytest.mark.parametrize("confidence", [0.9, 0.6])
def test_a_high_score_escalates_what_confidence_would_let_through(confidence: float) -> None:
    decision = decide(make_input(confidence=confidence, predicted_escalation=0.71), ACTIVE)
    assert decision.status == "pending" and decision.lane is Lane.ESCALATE
    assert decision.reasons == ("predicted_escalation",)
    assert decision.risk.value == "medium" and decision.tier == "senior"


def test_at_or_below_the_threshold_nothing_changes() -> None:
    for score in (0.7, 0.1, None):
        decision = decide(make_input(predicted_escalation=score), ACTIVE)
        assert decision.lane is Lane.AUTONOMOUS, score


def test_risk_rules_trump_and_low_confidence_keeps_its_reason() -> None:
    payment = make_input(action_kind="payment", amount=900.0, predicted_escalation=0.99)
    assert decide(payment, ACTIVE).reasons == ("high_value_transaction",)
    assert decide(payment, ACTIVE).risk.value == "high"
    low = make_input(confidence=0.2, predicted_escalation=0.99)
    assert decide(low, ACTIVE).reasons == ("low_confidence",)


def test_without_a_threshold_the_score_does_not_route() -> None:
    decision = decide(make_input(predicted_escalation=0.99), default_policy())
    assert decision.lane is Lane.AUTONOMOUS


def test_rules_may_use_the_score() -> None:
    rule = Rule(name="likely", when="predicted_escalation > 0.4 && amount > 10.0")
    policy = compile_policy(RoutingPolicy(rules=(rule,)), DEFAULT_TIERS)
    assert decide(make_input(amount=20.0, predicted_escalation=0.5), policy).reasons == ("likely",)
    # Unscored requests read 0, so the rule answers instead of failing.
    assert decide(make_input(amount=20.0), policy).lane is Lane.AUTONOMOUS
    assert rule_variables(make_input())["predicted_escalation"] == 0.0


PREPARED = compile_policy(
    RoutingPolicy(review_sample_rate=0.0),
    DEFAULT_TIERS,
    predicted_escalation_above=0.7,
    prepare_above=0.5,
)


@pytest.mark.parametrize(("confidence", "lane"), [(0.9, Lane.AUTONOMOUS), (0.6, Lane.REVIEW)])
def test_a_score_in_the_band_proceeds_and_is_queued_where_it_would_escalate(
    confidence: float, lane: Lane
) -> None:
    decision = decide(make_input(confidence=confidence, predicted_escalation=0.6), PREPARED)
    assert decision.status == "approved" and decision.lane is lane and decision.prepared
    assert decision.review is ReviewState.QUEUED and decision.needs_card
    assert decision.tier == "senior" and decision.reasons == ()


def test_outside_the_band_nothing_is_prepared() -> None:
    for score in (0.5, 0.2, None):
        decision = decide(make_input(predicted_escalation=score), PREPARED)
        assert not decision.prepared and decision.review is not ReviewState.QUEUED, score
    above = decide(make_input(predicted_escalation=0.71), PREPARED)
    assert above.reasons == ("predicted_escalation",) and not above.prepared
    low = decide(make_input(confidence=0.2, predicted_escalation=0.6), PREPARED)
    assert low.reasons == ("low_confidence",) and not low.prepared


@pytest.mark.parametrize(("above", "prepare_above"), [(None, 0.5), (0.7, 0.7), (0.7, -0.1)])
def test_a_band_needs_an_active_threshold_above_it(
    above: float | None, prepare_above: float
) -> None:
    with pytest.raises(PolicyError) as caught:
        compile_policy(
            RoutingPolicy(),
            DEFAULT_TIERS,
            predicted_escalation_above=above,
            prepare_above=prepare_above,
        )
    assert caught.value.path == "prediction.prepare_margin"
