"""Threshold calibration on synthetic histories whose best thresholds are known by hand."""

from __future__ import annotations

import json

import pytest

from bot.core.domain import Action, ApprovalRequest, Status
from bot.oversight.calibrate import NotEnoughHistory, Thresholds, calibrate, to_json, to_text
from routing import DEFAULT_TIERS, Lane, Policy, RoutingPolicy, Rule, compile_policy
from tests.unit.history import approved, confirmed, rejected, request, reversed_, unjudged

HIGH_VALUE = Rule(name="high_value", when='action.kind == "payment" && amount > 500.0')


def policy(*rules: Rule) -> Policy:
    return compile_policy(RoutingPolicy(rules=rules), DEFAULT_TIERS)


def payment(n: int, amount: float) -> dict[str, object]:
    return {"action": Action("payment", f"Pay {n}"), "amount": amount}


def clean_split() -> list[ApprovalRequest]:
    """Every problem below 0.62 confidence (or caught by the rule), every fine item above."""
    problems = [rejected(n, c) for n, c in enumerate((0.30, 0.40, 0.50, 0.55, 0.58, 0.60), 1)]
    by_rule = [
        rejected(7, 0.97, **payment(7, 900)),  # risk trumps confidence: always escalated
        approved(8, 0.90, **payment(8, 1000)),  # escalated by the rule, but fine
    ]
    fine = [approved(10 + k, round(0.66 + k / 100, 2)) for k in range(24)]  # 0.66 .. 0.89
    nobody_looked = [unjudged(40 + k, 0.9) for k in range(10)]
    stopped = request(50, 0.1, Lane.ESCALATE, Status.REJECTED, reasons=("agent_stopped",))
    return [*problems, *by_rule, *fine, *nobody_looked, stopped]


def test_suggests_the_lowest_review_threshold_that_catches_every_problem() -> None:
    result = calibrate(clean_split(), policy(HIGH_VALUE), target_recall=0.95)

    # 6 + 2 + 24 + 10 routed (the stopped agent's request is not), 32 judged, 7 problems.
    assert (result.routed, result.labelled, result.problems) == (42, 32, 7)
    current = result.current
    assert current.thresholds == Thresholds(0.8, 0.5)
    # Escalated now: the two rule items and the problems at 0.30 and 0.40.
    assert (current.escalation.part, current.escalation.whole) == (4, 42)
    assert (current.precision.part, current.precision.whole) == (3, 4)
    assert (current.recall.part, current.recall.whole) == (3, 7)

    # review_at 0.60 misses the problem at exactly 0.60; 0.65 catches all six and no fine
    # item (the lowest is 0.66). autonomous_at changes none of these, so it stays at 0.8.
    suggested = result.suggested
    assert suggested is not None
    assert suggested.thresholds == Thresholds(0.8, 0.65)
    assert (suggested.escalation.part, suggested.escalation.whole) == (8, 42)
    assert (suggested.precision.part, suggested.precision.whole) == (7, 8)
    assert (suggested.recall.part, suggested.recall.whole) == (7, 7)
    # Judged items at or above 0.8 that no rule escalates: the fine ones 0.80 .. 0.89.
    assert (suggested.autonomous_problems.part, suggested.autonomous_problems.whole) == (0, 10)
    assert result.warnings == ()


def test_text_and_json_show_current_suggested_and_the_yaml() -> None:
    result = calibrate(clean_split(), policy(HIGH_VALUE))
    text = to_text(result, "since 2026-03-01")
    assert "42 requests since 2026-03-01" in text
    assert "32 with ground truth" in text and "7 of them needed a human" in text
    current_row = next(line for line in text.splitlines() if line.startswith("current"))
    assert current_row.split()[1:4] == ["0.80", "0.50", "9.5%"]
    assert "42.9% (3/7)" in current_row
    suggested_row = next(line for line in text.splitlines() if line.startswith("suggested"))
    assert "0.65" in suggested_row and "100.0% (7/7)" in suggested_row
    assert "routing:\n  autonomous_at: 0.8\n  review_at: 0.65\n" in text
    assert "No autonomous decision was reviewed" in text

    body = json.loads(to_json(result))
    assert body["suggested"]["review_at"] == 0.65
    assert body["suggested"]["recall"] == {"value": 1.0, "part": 7, "whole": 7}
    assert body["current"]["precision"]["value"] == 0.75
    assert body["yaml"] == "routing:\n  autonomous_at: 0.8\n  review_at: 0.65\n"
    # 231 grid pairs with review_at <= autonomous_at, the current pair among them.
    assert len(body["candidates"]) == 231


def reviewed_autonomous(reversals: int) -> list[ApprovalRequest]:
    return [reversed_(60 + k, 0.9) if k < reversals else confirmed(60 + k, 0.9) for k in range(10)]


def test_warns_when_humans_reverse_over_a_fifth_of_autonomous_decisions() -> None:
    result = calibrate([*clean_split(), *reviewed_autonomous(3)], policy(HIGH_VALUE))
    assert (result.autonomous_reversal.part, result.autonomous_reversal.whole) == (3, 10)
    assert [w.code for w in result.warnings] == ["autonomous_reversed"]
    assert "30.0% (3/10)" in result.warnings[0].message
    assert "! Humans reversed 30.0%" in to_text(result, "")


def test_a_fifth_of_autonomous_decisions_reversed_is_not_yet_a_warning() -> None:
    result = calibrate([*clean_split(), *reviewed_autonomous(2)], policy(HIGH_VALUE))
    assert (result.autonomous_reversal.part, result.autonomous_reversal.whole) == (2, 10)
    assert result.warnings == ()


def test_autonomous_at_moves_only_when_autonomous_items_needed_a_human_too_often() -> None:
    history = [
        *(rejected(n, 0.3) for n in range(1, 5)),
        reversed_(5, 0.85),
        reversed_(6, 0.87),
        *(confirmed(10 + k, 0.95) for k in range(5)),
        *(confirmed(20 + k, 0.5, Lane.REVIEW) for k in range(11)),
    ]
    result = calibrate(history, policy(), target_recall=0.6)

    # review_at 0.35 escalates the four problems at 0.3 and nothing else: recall 4/6.
    # At autonomous_at 0.8 the judged autonomous items are 0.85, 0.87 and five at 0.95:
    # 2/7 needed a human, over 20%. 0.9 keeps only the five fine ones and is the nearest
    # setting that does (0.5 also does, 2/18, but is further from 0.8).
    assert (result.current.autonomous_problems.part, result.current.autonomous_problems.whole) == (
        2,
        7,
    )
    assert result.suggested is not None
    assert result.suggested.thresholds == Thresholds(0.9, 0.35)
    assert (result.suggested.recall.part, result.suggested.recall.whole) == (4, 6)
    assert (result.suggested.autonomous_problems.part,) == (0,)
    # And the history itself shows it: 2 of the 7 reviewed autonomous items were reversed.
    assert [w.code for w in result.warnings] == ["autonomous_reversed"]


def test_an_unreachable_target_says_so_and_shows_the_best_recall() -> None:
    history = [
        rejected(1, 0.3),
        rejected(2, 1.0),  # no threshold escalates a certain agent; only a rule could
        *(approved(10 + k, 0.7) for k in range(20)),
    ]
    result = calibrate(history, policy(), target_recall=1.0)
    assert result.suggested is None
    assert [w.code for w in result.warnings] == ["target_unreachable"]
    best = result.best_recall
    assert (best.recall.part, best.recall.whole) == (1, 2)
    assert best.thresholds.review_at == 0.35
    assert (best.escalation.part, best.escalation.whole) == (1, 22)
    text = to_text(result, "")
    assert "best recall" in text and "No change suggested." in text


def test_without_any_problem_nothing_is_suggested() -> None:
    result = calibrate([approved(n, 0.7) for n in range(20)], policy())
    assert result.suggested is None
    assert [w.code for w in result.warnings] == ["no_problems"]


def test_refuses_a_history_too_small_to_mean_anything() -> None:
    history = [approved(n, 0.7) for n in range(19)] + [unjudged(n, 0.9) for n in range(30, 60)]
    with pytest.raises(
        NotEnoughHistory, match=r"only 19 requests with ground truth .* among 49; .* at least 20"
    ):
        calibrate(history, policy())


@pytest.mark.parametrize("target", [0.0, -0.1, 1.5])
def test_target_recall_must_be_a_fraction(target: float) -> None:
    with pytest.raises(ValueError, match="target recall"):
        calibrate([], policy(), target_recall=target)


def test_says_so_when_the_current_thresholds_are_already_the_best() -> None:
    tuned = compile_policy(RoutingPolicy(review_at=0.65, rules=(HIGH_VALUE,)), DEFAULT_TIERS)
    result = calibrate(clean_split(), tuned)
    assert result.suggested == result.current
    assert "The current thresholds already reach recall 95%" in to_text(result, "")


def test_without_problems_the_output_has_no_suggestion() -> None:
    result = calibrate([approved(n, 0.7) for n in range(20)], policy())
    text = to_text(result, "")
    assert [line.split()[0] for line in text.splitlines() if line.startswith(("c", "s", "b"))] == [
        "current"
    ]
    assert "No change suggested." in text
    body = json.loads(to_json(result))
    assert body["suggested"] is None and body["yaml"] is None
    assert body["current"]["recall"] == {"value": None, "part": 0, "whole": 0}
