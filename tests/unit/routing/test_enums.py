"""Risk ordering and sampling argument checks."""

from __future__ import annotations

import hashlib

import pytest

from routing import RISK_ORDER, Risk, sampled


def test_risk_order_and_rank() -> None:
    assert RISK_ORDER == (Risk.LOW, Risk.MEDIUM, Risk.HIGH)
    assert [risk.rank for risk in RISK_ORDER] == [0, 1, 2]


def test_risks_compare_by_severity_not_alphabetically() -> None:
    assert Risk.LOW < Risk.MEDIUM < Risk.HIGH
    assert Risk.HIGH > Risk.MEDIUM > Risk.LOW
    assert Risk.LOW <= Risk.LOW <= Risk.HIGH
    assert Risk.HIGH >= Risk.HIGH >= Risk.MEDIUM
    assert not Risk.HIGH < Risk.LOW
    assert max(Risk.HIGH, Risk.LOW) is Risk.HIGH
    assert sorted([Risk.HIGH, Risk.LOW, Risk.MEDIUM]) == list(RISK_ORDER)


def test_risks_do_not_order_against_other_types() -> None:
    with pytest.raises(TypeError):
        _ = Risk.LOW < 1
    with pytest.raises(TypeError):
        _ = Risk.LOW <= 1
    with pytest.raises(TypeError):
        _ = Risk.LOW > 1
    with pytest.raises(TypeError):
        _ = Risk.LOW >= 1


def test_risks_are_still_their_config_strings() -> None:
    assert Risk("high") is Risk.HIGH
    assert f"{Risk.MEDIUM}" == "medium"


@pytest.mark.parametrize("request_id", ["req_1", "req_2", "req_abc", "émoji-🙂"])
def test_sampled_is_the_sha256_prefix_compared_with_the_rate(request_id: str) -> None:
    fraction = int.from_bytes(hashlib.sha256(request_id.encode()).digest()[:8], "big") / 2**64

    assert sampled(request_id, fraction + 1e-9)
    assert not sampled(request_id, max(fraction - 1e-9, 0.0))


@pytest.mark.parametrize("rate", [-0.01, 1.01, float("nan")])
def test_sampled_refuses_rates_outside_zero_to_one(rate: float) -> None:
    with pytest.raises(ValueError, match="is not between 0 and 1"):
        sampled("req_1", rate)
