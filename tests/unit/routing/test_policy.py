"""compile_policy(): whole-policy checks, rule compilation, and the tier-chain helpers."""

from __future__ import annotations

import pickle
from typing import Any

import cel
import pytest

from routing import (
    DEFAULT_RULES,
    DEFAULT_TIERS,
    Policy,
    PolicyError,
    Risk,
    RoutingPolicy,
    Rule,
    TierSpec,
    TimeoutAction,
    compile_policy,
    default_policy,
)


def _tiers(*names: str) -> list[TierSpec]:
    return [TierSpec(name=name, sla="1h") for name in names]


def _compile_rule(when: str, name: str = "my_rule") -> Policy:
    rules = (Rule(name="first", when="true"), Rule(name=name, when=when))
    return compile_policy(RoutingPolicy(rules=rules), DEFAULT_TIERS)


class TestPolicyError:
    def test_carries_path_and_problem(self) -> None:
        error = PolicyError("routing.rules[1].when", "rule 'x' does not compile")

        assert isinstance(error, ValueError)
        assert error.path == "routing.rules[1].when"
        assert error.problem == "rule 'x' does not compile"
        assert str(error) == "routing.rules[1].when: rule 'x' does not compile"

    def test_survives_pickling(self) -> None:
        error = pickle.loads(pickle.dumps(PolicyError("tiers", "empty")))

        assert (error.path, error.problem, str(error)) == ("tiers", "empty", "tiers: empty")


class TestRuleCompilation:
    def test_syntax_error_names_the_rule_line_and_column(self) -> None:
        with pytest.raises(PolicyError) as caught:
            _compile_rule('action.kind == "payment" &&& amount > 500', name="bad_rule")

        error = caught.value
        assert error.path == "routing.rules[1].when"
        assert error.problem.startswith(
            "rule 'bad_rule' does not compile: line 1, column 28: Syntax error:"
        )
        # The caret excerpt points at the column.
        assert error.problem.splitlines()[-1] == "| " + "." * 27 + "^"

    def test_multi_line_expression_reports_the_right_line(self) -> None:
        with pytest.raises(PolicyError) as caught:
            _compile_rule("amount > 1.0 &&\n  sentiment <")

        assert "line 2, column 14" in caught.value.problem

    def test_only_the_first_of_several_errors_is_reported(self) -> None:
        with pytest.raises(PolicyError) as caught:
            _compile_rule('"unterminated')

        assert caught.value.problem.count("line ") == 1

    def test_unexpected_compiler_message_is_passed_through(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        def refuse(expression: str) -> Any:
            raise RuntimeError("compiler fell over")

        monkeypatch.setattr(cel, "compile", refuse)

        with pytest.raises(PolicyError) as caught:
            compile_policy(RoutingPolicy(), DEFAULT_TIERS)

        assert caught.value.path == "routing.rules[0].when"
        assert caught.value.problem == (
            "rule 'high_value_transaction' does not compile: compiler fell over"
        )

    def test_unknown_variable_is_named(self) -> None:
        with pytest.raises(PolicyError) as caught:
            _compile_rule("ammount > 500.0 && amount > 1.0", name="typo")

        assert caught.value.path == "routing.rules[1].when"
        assert caught.value.problem.startswith("rule 'typo' uses unknown variable(s) 'ammount';")
        assert "amount" in caught.value.problem.split("known:")[1]

    def test_comprehension_variables_are_not_unknown(self) -> None:
        policy = _compile_rule(
            'labels.tags.exists(t, t == "vip") && context.items.all(item, item.ok)'
            " && [1, 2].map(n, n * 2).size() > 0 && [3].filter(k, k > 1).size() > 0"
            " && [4].exists_one(e, e == 4)"
        )

        assert [rule.name for rule in policy.routing.rules] == ["first", "my_rule"]

    def test_an_unbound_name_beside_a_comprehension_is_still_unknown(self) -> None:
        with pytest.raises(PolicyError, match="'ghost'"):
            _compile_rule("[1].exists(x, x == ghost)")


class TestTierChecks:
    def test_at_least_one_tier(self) -> None:
        with pytest.raises(PolicyError) as caught:
            compile_policy(RoutingPolicy(), [])

        assert str(caught.value) == "tiers: at least one tier is required"

    def test_duplicate_tier_names(self) -> None:
        with pytest.raises(PolicyError) as caught:
            compile_policy(RoutingPolicy(), _tiers("junior", "senior", "junior", "manager"))

        assert caught.value.path == "tiers[2].name"
        assert caught.value.problem == "duplicate tier name 'junior' (also tiers[0])"

    def test_start_tier_must_name_a_tier(self) -> None:
        routing = RoutingPolicy(start_tier={"low": "junior", "high": "boss"})

        with pytest.raises(PolicyError) as caught:
            compile_policy(routing, DEFAULT_TIERS)

        assert caught.value.path == "routing.start_tier.high"
        assert caught.value.problem == "'boss' is not a tier (tiers: junior, senior, manager)"

    def test_default_start_tier_maps_other_tier_names_by_position(self) -> None:
        two = compile_policy(RoutingPolicy(), _tiers("oncall", "lead"))
        three = compile_policy(RoutingPolicy(), _tiers("a", "b", "c"))
        one = compile_policy(RoutingPolicy(), _tiers("solo"))

        assert [two.start_tier(r) for r in Risk] == ["oncall", "lead", "lead"]
        assert [three.start_tier(r) for r in Risk] == ["a", "b", "c"]
        assert [one.start_tier(r) for r in Risk] == ["solo", "solo", "solo"]

    def test_default_names_win_where_the_tiers_have_them(self) -> None:
        policy = compile_policy(RoutingPolicy(), _tiers("junior", "x", "manager", "y"))

        assert [policy.start_tier(r) for r in Risk] == ["junior", "x", "manager"]

    def test_policy_constructed_directly_runs_the_same_checks(self) -> None:
        with pytest.raises(PolicyError):
            Policy(routing=RoutingPolicy(), tiers=())


class TestDefaultPolicy:
    def test_matches_the_contract(self) -> None:
        policy = default_policy()

        assert policy.routing.autonomous_at == 0.8
        assert policy.routing.review_at == 0.5
        assert policy.routing.review_sample_rate == 1.0
        assert policy.routing.autonomous_sample_rate == 0.0
        assert policy.routing.rules == DEFAULT_RULES
        assert [(r.name, r.risk, r.approvals) for r in DEFAULT_RULES] == [
            ("high_value_transaction", Risk.HIGH, 1),
            ("irreversible_action", Risk.HIGH, 2),
            ("negative_sentiment", Risk.HIGH, 1),
            ("regulated_domain", Risk.HIGH, 1),
            ("medium_risk_change", Risk.MEDIUM, 1),
        ]
        assert [(t.name, t.model_dump(mode="json")["sla"]) for t in policy.tiers] == [
            ("junior", "15m"),
            ("senior", "1h"),
            ("manager", "4h"),
        ]
        assert all(t.reviewers == ("web:admin",) for t in policy.tiers)
        assert all(t.slack_channel is None and t.teams_channel is None for t in policy.tiers)
        assert [policy.start_tier(risk) for risk in Risk] == ["junior", "senior", "manager"]
        assert policy.timeout_action(Risk.LOW) is TimeoutAction.REJECT

    def test_equal_policies_compare_equal_and_tiers_become_a_tuple(self) -> None:
        policy = compile_policy(RoutingPolicy(), list(DEFAULT_TIERS))

        assert policy == default_policy()
        assert isinstance(policy.tiers, tuple)


CHAIN = compile_policy(
    RoutingPolicy(),
    [
        TierSpec(name="junior", sla="15m", reviewers=("slack:U0AAA", "web:alice")),
        TierSpec(name="senior", sla="1h", reviewers=("slack:U0CCC", "web:alice")),
        TierSpec(name="manager", sla="4h", reviewers=("slack:U0DDD",)),
    ],
)


class TestTierHelpers:
    def test_tier_and_index(self) -> None:
        assert CHAIN.tier("senior").sla.total_seconds() == 3600
        assert [CHAIN.tier_index(name) for name in ("junior", "senior", "manager")] == [0, 1, 2]

    @pytest.mark.parametrize("method", ["tier", "tier_index", "next_tier"])
    def test_unknown_tier_is_a_key_error(self, method: str) -> None:
        with pytest.raises(KeyError, match="unknown tier 'ceo'"):
            getattr(CHAIN, method)("ceo")

    def test_next_tier_walks_up_the_chain_and_stops_at_the_top(self) -> None:
        assert CHAIN.next_tier("junior") == "senior"
        assert CHAIN.next_tier("senior") == "manager"
        assert CHAIN.next_tier("manager") is None
        assert CHAIN.top_tier == "manager"

    def test_tiers_of_lists_tiers_lowest_first(self) -> None:
        assert CHAIN.tiers_of("web:alice") == ("junior", "senior")
        assert CHAIN.tiers_of("slack:U0DDD") == ("manager",)
        assert CHAIN.tiers_of("slack:U0NOBODY") == ()

    @pytest.mark.parametrize(
        ("reviewer", "allowed"),
        [
            ("slack:U0AAA", {"junior"}),
            ("web:alice", {"junior", "senior"}),
            ("slack:U0CCC", {"junior", "senior"}),
            ("slack:U0DDD", {"junior", "senior", "manager"}),
            ("slack:U0NOBODY", set()),
            # Same id on another platform is another person.
            ("teams:U0DDD", set()),
        ],
    )
    def test_may_act_at_own_tier_and_below_never_above(
        self, reviewer: str, allowed: set[str]
    ) -> None:
        acts = {tier.name for tier in CHAIN.tiers if CHAIN.may_act(reviewer, tier.name)}

        assert acts == allowed

    def test_may_act_on_an_unknown_tier_is_a_key_error(self) -> None:
        with pytest.raises(KeyError):
            CHAIN.may_act("slack:U0DDD", "ceo")

    def test_top_tier_reviewers(self) -> None:
        assert CHAIN.is_top_tier_reviewer("slack:U0DDD")
        assert not CHAIN.is_top_tier_reviewer("web:alice")


class TestTimeoutAction:
    def test_plain_action_applies_to_every_risk(self) -> None:
        policy = compile_policy(RoutingPolicy(on_timeout="expire"), DEFAULT_TIERS)

        assert {policy.timeout_action(risk) for risk in Risk} == {TimeoutAction.EXPIRE}

    def test_map_by_risk_and_missing_risks_reject(self) -> None:
        policy = compile_policy(
            RoutingPolicy(on_timeout={"low": "approve", "high": "expire"}), DEFAULT_TIERS
        )

        assert policy.timeout_action(Risk.LOW) is TimeoutAction.APPROVE
        assert policy.timeout_action(Risk.MEDIUM) is TimeoutAction.REJECT
        assert policy.timeout_action(Risk.HIGH) is TimeoutAction.EXPIRE
