"""Field-level validation of Rule, TierSpec and RoutingPolicy: each error names its key."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from routing import Risk, RoutingPolicy, Rule, TierSpec, TimeoutAction


def _errors(model: type[Any], **fields: Any) -> list[tuple[tuple[str | int, ...], str]]:
    with pytest.raises(ValidationError) as caught:
        model(**fields)
    return [(error["loc"], error["msg"]) for error in caught.value.errors()]


class TestRule:
    def test_defaults(self) -> None:
        rule = Rule(name="r", when="true")

        assert (rule.risk, rule.approvals) == (Risk.HIGH, 1)

    @pytest.mark.parametrize("name", ["", "Has Caps", "dash-name"])
    def test_name_is_snake_case(self, name: str) -> None:
        [(loc, _)] = _errors(Rule, name=name, when="true")

        assert loc == ("name",)

    @pytest.mark.parametrize("approvals", [0, 6])
    def test_approvals_between_one_and_five(self, approvals: int) -> None:
        [(loc, _)] = _errors(Rule, name="r", when="true", approvals=approvals)

        assert loc == ("approvals",)

    def test_empty_when_and_unknown_keys(self) -> None:
        errors = _errors(Rule, name="r", when="", severity="high")

        assert [loc for loc, _ in errors] == [("when",), ("severity",)]

    def test_frozen(self) -> None:
        rule = Rule(name="r", when="true")

        with pytest.raises(ValidationError):
            rule.name = "other"


class TestTierSpec:
    def test_reads_durations_and_writes_them_back(self) -> None:
        tier = TierSpec(name="junior", sla="15m", remind_after="10m", reviewers=["slack:U0AAA"])

        assert tier.sla == timedelta(minutes=15)
        assert tier.remind_after == timedelta(minutes=10)
        assert tier.reviewers == ("slack:U0AAA",)
        dumped = tier.model_dump(mode="json")
        assert (dumped["sla"], dumped["remind_after"]) == ("15m", "10m")
        assert TierSpec.model_validate(dumped) == tier

    def test_bad_duration_names_the_key(self) -> None:
        [(loc, message)] = _errors(TierSpec, name="junior", sla="15x")

        assert loc == ("sla",)
        assert "'15x' is not a duration: use a number and a unit s, m, h or d" in message

    @pytest.mark.parametrize("remind_after", ["15m", "1h"])
    def test_remind_after_must_be_shorter_than_sla(self, remind_after: str) -> None:
        [(loc, message)] = _errors(TierSpec, name="junior", sla="15m", remind_after=remind_after)

        assert loc == ("remind_after",)
        assert f"remind_after ({remind_after}) must be shorter than sla (15m)" in message

    def test_remind_after_without_a_valid_sla_reports_only_the_sla(self) -> None:
        [(loc, _)] = _errors(TierSpec, name="junior", sla="soon", remind_after="10m")

        assert loc == ("sla",)

    def test_bad_reviewer_names_its_entry(self) -> None:
        [(loc, message)] = _errors(
            TierSpec, name="junior", sla="15m", reviewers=["slack:U0AAA", "U0BBB", "web:bob"]
        )

        assert loc == ("reviewers", 1)
        assert "'U0BBB' is not a reviewer: use platform:id" in message

    @pytest.mark.parametrize(
        "reviewer", ["slack:", "email:bob@example.com", "Slack:U0AAA", "web:has space"]
    )
    def test_reviewer_forms_that_are_refused(self, reviewer: str) -> None:
        [(loc, _)] = _errors(TierSpec, name="junior", sla="15m", reviewers=[reviewer])

        assert loc == ("reviewers", 0)

    def test_reviewer_forms_that_are_accepted(self) -> None:
        reviewers = ("slack:U0AAA", "teams:00000000-aad-object-id", "web:alice")

        assert TierSpec(name="t", sla="1h", reviewers=reviewers).reviewers == reviewers

    def test_name_and_channels_must_not_be_empty(self) -> None:
        errors = _errors(TierSpec, name="", sla="1h", slack_channel="", teams_channel="")

        assert {loc[0] for loc, _ in errors} == {"name", "slack_channel", "teams_channel"}


class TestRoutingPolicy:
    def test_review_at_above_autonomous_at(self) -> None:
        [(loc, message)] = _errors(RoutingPolicy, autonomous_at=0.6, review_at=0.7)

        assert loc == ("review_at",)
        assert "review_at (0.7) must not be above autonomous_at (0.6)" in message

    def test_equal_thresholds_are_allowed(self) -> None:
        assert RoutingPolicy(autonomous_at=0.7, review_at=0.7).review_at == 0.7

    def test_invalid_autonomous_at_is_reported_once(self) -> None:
        [(loc, _)] = _errors(RoutingPolicy, autonomous_at=2.0, review_at=0.9)

        assert loc == ("autonomous_at",)

    @pytest.mark.parametrize(
        "field", ["autonomous_at", "review_at", "review_sample_rate", "autonomous_sample_rate"]
    )
    @pytest.mark.parametrize("value", [-0.1, 1.5, float("nan")])
    def test_fractions_between_zero_and_one(self, field: str, value: float) -> None:
        errors = _errors(RoutingPolicy, **{field: value})

        assert (field,) in [loc for loc, _ in errors]

    def test_duplicate_rule_names(self) -> None:
        rules = [
            {"name": "a", "when": "true"},
            {"name": "b", "when": "true"},
            {"name": "a", "when": "false"},
        ]

        [(loc, message)] = _errors(RoutingPolicy, rules=rules)

        assert loc == ("rules",)
        assert "duplicate rule name 'a' (rules[0] and rules[2])" in message

    def test_rules_given_replace_the_defaults(self) -> None:
        policy = RoutingPolicy(rules=[{"name": "only", "when": "true"}])

        assert [rule.name for rule in policy.rules] == ["only"]

    def test_approve_on_timeout_for_high_risk_in_a_map(self) -> None:
        [(loc, message)] = _errors(
            RoutingPolicy, on_timeout={"low": "approve", "medium": "reject", "high": "approve"}
        )

        assert loc == ("on_timeout",)
        assert "approve is not allowed for high risk" in message

    def test_plain_approve_on_timeout_covers_high_risk_too(self) -> None:
        [(loc, message)] = _errors(RoutingPolicy, on_timeout="approve")

        assert loc == ("on_timeout",)
        assert "approve is not allowed for high risk" in message

    def test_approve_on_timeout_for_lower_risks(self) -> None:
        policy = RoutingPolicy(on_timeout={"low": "approve", "medium": "approve"})

        assert policy.on_timeout == {Risk.LOW: TimeoutAction.APPROVE, Risk.MEDIUM: "approve"}

    def test_unknown_keys_are_errors(self) -> None:
        [(loc, _)] = _errors(RoutingPolicy, autonomus_at=0.9)

        assert loc == ("autonomus_at",)

    def test_json_round_trip(self) -> None:
        policy = RoutingPolicy(
            start_tier={"high": "senior"}, on_timeout={"low": "approve", "high": "expire"}
        )

        assert RoutingPolicy.model_validate(policy.model_dump(mode="json")) == policy
