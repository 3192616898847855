"""Confidence-threshold calibration: replay the recorded history under candidate thresholds.

The seed's advice is to calibrate thresholds against override data. Here every stored
request is routed again with the current rules (risk trumps confidence, exactly as
``routing.decide`` does) and, for each candidate pair (autonomous_at, review_at), we count
what would have escalated. Ground truth is ``oversight.needed_a_human``: a person rejected,
modified or reversed the item, or the agent reported the outcome wrong. Items nobody
judged have no ground truth; they count toward the escalation rate (reviewer load) but not
toward precision or recall. Pure: requests and policy in, frozen values out.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from bot.core.domain import ApprovalRequest, Status
from bot.core.errors import SignoffError
from bot.oversight.figures import Rate, Warning, deciding_vote, needed_a_human
from bot.oversight.training import has_ground_truth
from routing import Lane, Policy, compile_policy, confidence_lane, decide

GRID_STEPS = 20  # thresholds 0.00, 0.05, ..., 1.00
MIN_LABELLED = 20
AUTONOMOUS_REVERSAL_LIMIT = 0.20
DEFAULT_TARGET_RECALL = 0.95


class NotEnoughHistory(SignoffError):
    """Too few items with ground truth for the figures to mean anything."""


@dataclass(frozen=True)
class Thresholds:
    autonomous_at: float
    review_at: float


@dataclass(frozen=True)
class Scores:
    """How one pair of thresholds would have done on the history."""

    thresholds: Thresholds
    escalation: Rate  # escalated / all routed requests
    precision: Rate  # needed a human / escalated, among items with ground truth
    recall: Rate  # escalated / needed a human
    autonomous_problems: Rate  # needed a human / would go autonomous, with ground truth


@dataclass(frozen=True)
class Calibration:
    routed: int
    labelled: int
    problems: int
    target_recall: float
    current: Scores
    suggested: Scores | None
    best_recall: Scores
    autonomous_reversal: Rate  # reversed / autonomous items a person reviewed
    warnings: tuple[Warning, ...]
    candidates: tuple[Scores, ...]


@dataclass(frozen=True)
class _Item:
    confidence: float
    by_rules: bool  # a risk rule escalates it whatever the confidence
    problem: bool | None  # None: nobody judged it


def _grid() -> list[Thresholds]:
    """Every pair on the grid that the config would accept (review_at <= autonomous_at)."""
    steps = [i / GRID_STEPS for i in range(GRID_STEPS + 1)]
    return [Thresholds(a, r) for r in steps for a in steps if r <= a]


def _replayable(request: ApprovalRequest) -> bool:
    # A stopped agent's requests never reached the thresholds; they say nothing about them.
    return request.reasons != ("agent_stopped",)


def _items(requests: Sequence[ApprovalRequest], policy: Policy) -> list[_Item]:
    # With both thresholds at zero, confidence never escalates: whatever decide() still
    # escalates, the rules escalated. One compile, then every rule honoured as configured.
    rules_only = compile_policy(
        policy.routing.model_copy(update={"autonomous_at": 0.0, "review_at": 0.0}),
        policy.tiers,
    )
    items = []
    for request in requests:
        if not _replayable(request):
            continue
        decision = decide(request.routing_input(), rules_only)
        items.append(
            _Item(
                confidence=request.confidence,
                by_rules=decision.lane is Lane.ESCALATE,
                problem=needed_a_human(request) if has_ground_truth(request) else None,
            )
        )
    return items


def _lane(item: _Item, thresholds: Thresholds) -> Lane:
    if item.by_rules:
        return Lane.ESCALATE
    return confidence_lane(item.confidence, thresholds.autonomous_at, thresholds.review_at)


def _escalations(items: Sequence[_Item], review_at: float) -> tuple[Rate, Rate, Rate]:
    """Escalation rate, precision and recall: they depend on review_at alone, since with
    review_at <= autonomous_at an item escalates exactly when it would at autonomous_at
    equal to review_at."""
    pair = Thresholds(review_at, review_at)
    escalated = [i for i in items if _lane(i, pair) is Lane.ESCALATE]
    judged = sum(1 for i in escalated if i.problem is not None)
    caught = sum(1 for i in escalated if i.problem)
    problems = sum(1 for i in items if i.problem)
    return Rate(len(escalated), len(items)), Rate(caught, judged), Rate(caught, problems)


def _autonomous_problems(items: Sequence[_Item], autonomous_at: float) -> Rate:
    """Needed a human among the judged items that would go autonomous: autonomous_at alone."""
    pair = Thresholds(autonomous_at, 0.0)
    judged = [i for i in items if i.problem is not None and _lane(i, pair) is Lane.AUTONOMOUS]
    return Rate(sum(1 for i in judged if i.problem), len(judged))


def _scores(items: Sequence[_Item], pairs: Sequence[Thresholds]) -> list[Scores]:
    # One pass per distinct threshold value rather than per pair: 42 passes, not 231.
    by_review = {r: _escalations(items, r) for r in {p.review_at for p in pairs}}
    by_autonomous = {a: _autonomous_problems(items, a) for a in {p.autonomous_at for p in pairs}}
    return [Scores(p, *by_review[p.review_at], by_autonomous[p.autonomous_at]) for p in pairs]


def _autonomous_reversal(requests: Sequence[ApprovalRequest]) -> Rate:
    reviewed = [r for r in requests if r.lane is Lane.AUTONOMOUS and deciding_vote(r) is not None]
    return Rate(sum(1 for r in reviewed if r.status is Status.REVERSED), len(reviewed))


def _preference(current: Thresholds) -> Callable[[Scores], tuple[float, ...]]:
    """Sort key: fewest escalations, then best precision, then the lowest review_at.

    autonomous_at moves none of those (review and autonomous items both proceed); it only
    decides which proceeding items get a review card. So among otherwise equal candidates,
    prefer one whose would-be autonomous items needed a human at most as often as the
    seed's 20% limit, and then the one closest to the current setting: the history says
    nothing that would justify moving it further.
    """

    def key(s: Scores) -> tuple[float, ...]:
        share = s.autonomous_problems.value
        return (
            s.escalation.value or 0.0,
            -(s.precision.value or 0.0),
            s.thresholds.review_at,
            float(share is not None and share > AUTONOMOUS_REVERSAL_LIMIT),
            abs(s.thresholds.autonomous_at - current.autonomous_at),
            s.thresholds.autonomous_at,
        )

    return key


def calibrate(
    requests: Sequence[ApprovalRequest],
    policy: Policy,
    *,
    target_recall: float = DEFAULT_TARGET_RECALL,
    min_labelled: int = MIN_LABELLED,
) -> Calibration:
    """Score the current thresholds and every grid candidate; suggest the cheapest that
    reaches ``target_recall``.

    Raises:
        ValueError: ``target_recall`` outside (0, 1].
        NotEnoughHistory: fewer than ``min_labelled`` items with ground truth.
    """
    if not 0.0 < target_recall <= 1.0:
        raise ValueError(f"target recall must be in (0, 1], got {target_recall}")
    items = _items(requests, policy)
    labelled = sum(1 for i in items if i.problem is not None)
    if labelled < min_labelled:
        raise NotEnoughHistory(
            f"only {labelled} requests with ground truth (a person's verdict or a reported "
            f"outcome) among {len(items)}; calibration needs at least {min_labelled}"
        )
    now = Thresholds(policy.routing.autonomous_at, policy.routing.review_at)
    candidates = _scores(items, [*(pair for pair in _grid() if pair != now), now])
    current = candidates[-1]
    key = _preference(now)
    problems = sum(1 for i in items if i.problem)
    reaching = [
        c for c in candidates if c.recall.value is not None and c.recall.value >= target_recall
    ]
    suggested = min(reaching, key=key) if reaching else None
    best = min(candidates, key=lambda c: (-(c.recall.value or 0.0), *key(c)))

    warnings: list[Warning] = []
    if problems == 0:
        warnings.append(
            Warning(
                "no_problems",
                "No request in the history needed a human, so recall cannot be measured; "
                "keep the current thresholds until reviewers or outcomes flag a problem.",
            )
        )
        suggested = None
    elif suggested is None:
        warnings.append(
            Warning(
                "target_unreachable",
                f"No thresholds reach recall {target_recall:.0%}: the best is "
                f"{_pct(best.recall)} (problems with confidence this high escape every "
                "threshold; add a risk rule for them).",
            )
        )
    reversal = _autonomous_reversal(requests)
    if reversal.value is not None and reversal.value > AUTONOMOUS_REVERSAL_LIMIT:
        warnings.append(
            Warning(
                "autonomous_reversed",
                f"Humans reversed {_pct(reversal)} of the autonomous decisions they reviewed, "
                f"over {AUTONOMOUS_REVERSAL_LIMIT:.0%}: autonomous_at is too low, the "
                "thresholds are miscalibrated.",
            )
        )
    return Calibration(
        routed=len(items),
        labelled=labelled,
        problems=problems,
        target_recall=target_recall,
        current=current,
        suggested=suggested,
        best_recall=best,
        autonomous_reversal=reversal,
        warnings=tuple(warnings),
        candidates=tuple(sorted(candidates, key=key)),
    )


# -- rendering ------------------------------------------------------------------------------


def _pct(rate: Rate) -> str:
    value = rate.value
    return "n/a" if value is None else f"{value:.1%} ({rate.part}/{rate.whole})"


def _rate_json(rate: Rate) -> dict[str, Any]:
    return {"value": rate.value, "part": rate.part, "whole": rate.whole}


def _scores_json(scores: Scores | None) -> dict[str, Any] | None:
    if scores is None:
        return None
    return {
        "autonomous_at": scores.thresholds.autonomous_at,
        "review_at": scores.thresholds.review_at,
        "escalation_rate": _rate_json(scores.escalation),
        "precision": _rate_json(scores.precision),
        "recall": _rate_json(scores.recall),
        "autonomous_problems": _rate_json(scores.autonomous_problems),
    }


def yaml_snippet(thresholds: Thresholds) -> str:
    return (
        f"routing:\n  autonomous_at: {thresholds.autonomous_at:g}\n"
        f"  review_at: {thresholds.review_at:g}\n"
    )


def to_json(result: Calibration) -> str:
    body = {
        "routed": result.routed,
        "labelled": result.labelled,
        "problems": result.problems,
        "target_recall": result.target_recall,
        "current": _scores_json(result.current),
        "suggested": _scores_json(result.suggested),
        "best_recall": _scores_json(result.best_recall),
        "autonomous_reversal": _rate_json(result.autonomous_reversal),
        "warnings": [{"code": w.code, "message": w.message} for w in result.warnings],
        "yaml": yaml_snippet(result.suggested.thresholds) if result.suggested else None,
        "candidates": [_scores_json(c) for c in result.candidates],
    }
    return json.dumps(body, indent=2) + "\n"


def to_text(result: Calibration, window: str) -> str:
    lines = [
        f"Threshold calibration over {result.routed} requests {window}:",
        f"  {result.labelled} with ground truth (a person's verdict or a reported outcome), "
        f"{result.problems} of them needed a human.",
        "  Escalation rate is over all requests; precision and recall over those with "
        "ground truth.",
        "",
    ]
    rows: list[tuple[str, Scores]] = [("current", result.current)]
    if result.suggested is not None:
        rows.append(("suggested", result.suggested))
    elif result.problems:
        rows.append(("best recall", result.best_recall))
    header = (
        "",
        "autonomous_at",
        "review_at",
        "escalation",
        "precision",
        "recall",
        "autonomous problems",
    )
    table = [header] + [
        (
            name,
            f"{s.thresholds.autonomous_at:.2f}",
            f"{s.thresholds.review_at:.2f}",
            _pct(s.escalation),
            _pct(s.precision),
            _pct(s.recall),
            _pct(s.autonomous_problems),
        )
        for name, s in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        cells = [row[0].ljust(widths[0])] + [
            cell.rjust(widths[i]) for i, cell in enumerate(row) if i
        ]
        lines.append("  ".join(cells).rstrip())
    lines.append("")
    reversal = result.autonomous_reversal
    if reversal.whole:
        lines.append(
            f"Humans reversed {_pct(reversal)} of the autonomous decisions they reviewed "
            f"(limit {AUTONOMOUS_REVERSAL_LIMIT:.0%})."
        )
    else:
        lines.append(
            "No autonomous decision was reviewed by a person; set "
            "routing.autonomous_sample_rate above 0 to measure reversals."
        )
    for warning in result.warnings:
        lines.append(f"! {warning.message}")
    lines.append("")
    if result.suggested is None:
        lines.append("No change suggested.")
    elif result.suggested.thresholds == result.current.thresholds:
        lines.append(
            f"The current thresholds already reach recall {result.target_recall:.0%} "
            "at the lowest escalation rate."
        )
    else:
        lines.append(
            f"Suggested for recall >= {result.target_recall:.0%} at the lowest escalation "
            "rate; merge into your config:"
        )
        lines.append("")
        lines.append(yaml_snippet(result.suggested.thresholds).rstrip("\n"))
    return "\n".join(lines) + "\n"
