"""Properties of decide() and sampled() over generated requests."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

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
    sampled,
)

POLICY = default_policy()
SAMPLING_POLICY = compile_policy(
    RoutingPolicy(review_sample_rate=0.5, autonomous_sample_rate=0.3),
    [
        TierSpec(name="junior", sla="15m"),
        TierSpec(name="senior", sla="1h"),
        TierSpec(name="manager", sla="4h"),
    ],
)
# Rules that read maps without guarding, so that generated labels make some of them error.
ERRORING_POLICY = compile_policy(
    RoutingPolicy(
        rules=(
            Rule(name="gold", when='labels.tier == "gold"', risk=Risk.LOW),
            Rule(name="vip", when="context.vip", risk=Risk.MEDIUM),
        )
    ),
    SAMPLING_POLICY.tiers,
)

_json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.floats(allow_nan=False)
    | st.text(max_size=10)
)
_json = st.recursive(
    _json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
_maps = st.dictionaries(st.sampled_from(["tier", "vip", "x", ""]), _json, max_size=3)

inputs = st.builds(
    RoutingInput,
    request_id=st.text(min_size=1, max_size=20),
    agent_id=st.sampled_from(["invoice-bot", "support-bot"]),
    action_kind=st.sampled_from(["invoice", "payment", "refund", "account_change", "email"]),
    action_summary=st.text(max_size=20),
    action_payload=_maps,
    confidence=st.floats(min_value=0.0, max_value=1.0),
    amount=st.floats(min_value=0.0, max_value=1e9) | st.integers(0, 10**6),
    currency=st.sampled_from(["", "USD", "EUR"]),
    reversible=st.booleans(),
    domain=st.sampled_from(["", "legal", "retail", "medical"]),
    sentiment=st.floats(min_value=-1.0, max_value=1.0),
    labels=_maps,
    context=_maps,
)

# Each trigger forces one default rule to match; the value is (rule name, risk, fields).
_Trigger = tuple[str, Risk, dict[str, Any]]
_triggers: st.SearchStrategy[_Trigger] = st.one_of(
    st.builds(
        lambda amount: (
            "high_value_transaction",
            Risk.HIGH,
            {"action_kind": "payment", "amount": amount},
        ),
        st.floats(min_value=500.0, max_value=1e12, exclude_min=True),
    ),
    st.just(("irreversible_action", Risk.HIGH, {"reversible": False})),
    st.builds(
        lambda s: ("negative_sentiment", Risk.HIGH, {"sentiment": s}),
        st.floats(min_value=-1.0, max_value=-0.6, exclude_max=True),
    ),
    st.builds(
        lambda d: ("regulated_domain", Risk.HIGH, {"domain": d}),
        st.sampled_from(["legal", "medical", "financial"]),
    ),
    st.builds(
        lambda kind, c: ("medium_risk_change", Risk.MEDIUM, {"action_kind": kind, "confidence": c}),
        st.sampled_from(["account_change", "refund", "config_change"]),
        st.floats(min_value=0.0, max_value=0.7, exclude_max=True),
    ),
)


@given(base=inputs, trigger=_triggers)
def test_risk_trumps_confidence(
    base: RoutingInput, trigger: tuple[str, Risk, dict[str, Any]]
) -> None:
    name, risk, fields = trigger
    decision = decide(replace(base, **fields), POLICY)

    assert decision.status == "pending"
    assert decision.lane is Lane.ESCALATE
    assert name in decision.reasons
    assert decision.risk >= risk
    assert decision.tier == POLICY.start_tier(decision.risk)
    assert decision.review is ReviewState.NONE
    assert decision.needs_card


@given(inp=inputs, policy=st.sampled_from([POLICY, SAMPLING_POLICY, ERRORING_POLICY]))
def test_decide_is_deterministic_and_consistent(inp: RoutingInput, policy: Any) -> None:
    first = decide(inp, policy)
    again = decide(replace(inp), policy)

    assert first == again
    if first.status == "approved":
        assert first.lane in (Lane.AUTONOMOUS, Lane.REVIEW)
        assert first.risk is Risk.LOW
        assert first.reasons == ()
        assert (first.tier is not None) == (first.review is ReviewState.QUEUED)
    else:
        assert first.status == "pending"
        assert first.lane is Lane.ESCALATE
        assert first.reasons
        assert first.tier == policy.start_tier(first.risk)
        assert first.review is ReviewState.NONE
    assert len(first.rule_errors) == sum(r.startswith("rule_error:") for r in first.reasons)


@given(inp=inputs)
def test_a_stopped_agent_is_always_rejected(inp: RoutingInput) -> None:
    decision = decide(replace(inp, agent_stopped=True), ERRORING_POLICY)

    assert decision.status == "rejected"
    assert decision.reasons == ("agent_stopped",)


@given(
    request_id=st.text(),
    low=st.floats(min_value=0.0, max_value=1.0),
    high=st.floats(min_value=0.0, max_value=1.0),
)
def test_sampling_is_deterministic_and_monotone_in_the_rate(
    request_id: str, low: float, high: float
) -> None:
    low, high = min(low, high), max(low, high)

    assert sampled(request_id, low) == sampled(request_id, low)
    assert not sampled(request_id, 0.0)
    assert sampled(request_id, 1.0)
    if sampled(request_id, low):
        assert sampled(request_id, high)


@pytest.mark.parametrize("rate", [0.01, 0.1, 0.25, 0.5, 0.9])
def test_sampling_roughly_matches_the_rate(rate: float) -> None:
    ids = 20_000
    hits = sum(sampled(f"req_{n:08d}", rate) for n in range(ids))

    # Four standard deviations of a binomial: a real skew fails, chance does not.
    tolerance = 4 * math.sqrt(rate * (1 - rate) / ids)
    assert abs(hits / ids - rate) < tolerance
