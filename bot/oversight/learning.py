"""The report's sections on learning from the history: standing approvals and the model.

Pure: requests, grants and the active model in; figures, text lines and HTML out.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.core.domain import ApprovalRequest, Status
from bot.core.learning import STANDING_CHANNEL, PredictionModel, StandingApproval
from bot.oversight.figures import Rate, needed_a_human
from bot.oversight.figures import quality as figures_quality
from bot.oversight.predict import quality
from bot.oversight.training import has_ground_truth
from routing import Lane

# Live quality this far below the evaluation's is reported as drift.
DRIFT_AUC_DROP = 0.1


def standing_grant(request: ApprovalRequest) -> str | None:
    """The standing approval that approved `request`, if one did (from its vote)."""
    for vote in request.votes:
        if vote.channel == STANDING_CHANNEL:
            marker = vote.rationale.split(":", 1)[0]
            return marker.removeprefix("standing approval ").strip() or "?"
    return None


@dataclass(frozen=True)
class StandingFigures:
    approved: int
    by_grant: tuple[tuple[str, int], ...]
    reviewed_after: int
    reversed: int
    active_grants: int
    reviewer_hours_saved: float | None


def standing_figures(
    requests: Sequence[ApprovalRequest],
    grants: Sequence[StandingApproval],
    now: datetime,
    decision_median: float | None,
) -> StandingFigures:
    """Items approved under standing approvals, how many were posted for review after the
    fact and reversed, and the reviewer time they saved at the median time to decision."""
    counts: dict[str, int] = {}
    reviewed = reversed_ = 0
    for request in requests:
        grant = standing_grant(request)
        if grant is None:
            continue
        counts[grant] = counts.get(grant, 0) + 1
        reviewed += request.review_status is not None
        reversed_ += request.status is Status.REVERSED
    approved = sum(counts.values())
    return StandingFigures(
        approved=approved,
        by_grant=tuple(sorted(counts.items(), key=lambda item: (-item[1], item[0]))),
        reviewed_after=reviewed,
        reversed=reversed_,
        active_grants=sum(1 for g in grants if g.active_at(now)),
        reviewer_hours_saved=approved * decision_median / 3600
        if decision_median is not None
        else None,
    )


@dataclass(frozen=True)
class Period:
    """How requests were routed over a stretch of time: the escalation rate, and the
    escalation recall on the recorded ground truth (problems that went to a person)."""

    requests: int
    escalation_rate: float | None
    recall: float | None


def period(requests: Sequence[ApprovalRequest]) -> Period:
    real = [r for r in requests if not r.canary]
    measured = figures_quality(real)
    return Period(
        requests=len(real),
        escalation_rate=Rate(sum(1 for r in real if r.lane is Lane.ESCALATE), len(real)).value,
        recall=measured.escalation_recall.value,
    )


@dataclass(frozen=True)
class ModelFigures:
    version: int
    mode: str
    threshold: float
    evaluation_auc: float | None
    live: dict[str, Any]
    drift: bool
    would_add: int
    would_add_needed: int
    added: int
    escalated_below: int
    escalated_below_needed_nobody: int
    # Routing before the model was activated and since (None: activation time unknown).
    before: Period | None = None
    since: Period | None = None
    activated_at: datetime | None = None
    # Active mode: requests that proceeded scoring in the prepared band, and were posted.
    prepare_above: float | None = None
    prepared: int = 0
    prepared_needed: int = 0


def model_figures(
    requests: Sequence[ApprovalRequest],
    model: PredictionModel,
    *,
    mode: str,
    threshold: float,
    prepare_above: float | None = None,
) -> ModelFigures:
    """The model's quality on the evaluation window and on the live one (drift), and its
    effect: escalations it added (active) or would add (shadow), escalated items it scored
    low (escalations a lower reliance on confidence could avoid), the escalation rate and
    recall before and since it was activated, and the requests it prepared (active)."""
    scored = [r for r in requests if r.predicted_escalation is not None and not r.canary]
    judged = [r for r in scored if has_ground_truth(r) and r.is_final]
    live = quality(
        [r.predicted_escalation or 0.0 for r in judged],
        [needed_a_human(r) for r in judged],
        threshold,
    )
    evaluation_auc = (model.metrics.get("evaluation") or {}).get("auc")
    high = [r for r in scored if (r.predicted_escalation or 0.0) > threshold]
    would_add = [r for r in high if r.lane is not Lane.ESCALATE]
    below = [
        r
        for r in scored
        if r.lane is Lane.ESCALATE
        and r.reasons == ("low_confidence",)
        and (r.predicted_escalation or 0.0) <= threshold
    ]
    activated = model.activated_at
    prepared = [
        r
        for r in scored
        if prepare_above is not None
        and r.lane is not Lane.ESCALATE
        and r.review_status is not None
        and (r.predicted_escalation or 0.0) > prepare_above
    ]
    return ModelFigures(
        version=model.version,
        mode=mode,
        threshold=threshold,
        evaluation_auc=evaluation_auc,
        live=live,
        drift=live["auc"] is not None
        and evaluation_auc is not None
        and live["auc"] < evaluation_auc - DRIFT_AUC_DROP,
        would_add=len(would_add),
        would_add_needed=sum(1 for r in would_add if has_ground_truth(r) and needed_a_human(r)),
        added=sum(1 for r in scored if "predicted_escalation" in r.reasons),
        escalated_below=len(below),
        escalated_below_needed_nobody=sum(
            1 for r in below if has_ground_truth(r) and not needed_a_human(r)
        ),
        before=period([r for r in requests if r.created_at < activated])
        if activated is not None
        else None,
        since=period([r for r in requests if r.created_at >= activated])
        if activated is not None
        else None,
        activated_at=activated,
        prepare_above=prepare_above,
        prepared=len(prepared),
        prepared_needed=sum(1 for r in prepared if has_ground_truth(r) and needed_a_human(r)),
    )


def _num(value: float | None, spec: str = ".3f") -> str:
    return "n/a" if value is None else format(value, spec)


def text_lines(standing: StandingFigures, model: ModelFigures | None) -> list[str]:
    lines = ["", "Standing approvals:"]
    lines.append(
        f"  {standing.approved} items approved under standing approvals "
        f"({standing.active_grants} grants active now); {standing.reviewed_after} posted for "
        f"review after the fact, {standing.reversed} reversed"
    )
    if standing.reviewer_hours_saved is not None:
        lines.append(
            f"  about {standing.reviewer_hours_saved:.1f} reviewer hours saved "
            "(at the median time to decision)"
        )
    lines += [f"  {grant}: {count} items" for grant, count in standing.by_grant[:10]]
    lines += ["", "Model:"]
    if model is None:
        lines.append("  no model in use (signoff predict train, then activate)")
        return lines
    live = model.live
    lines += [
        f"  version {model.version}, prediction.mode {model.mode}, threshold {model.threshold}",
        f"  ROC AUC on its evaluation window {_num(model.evaluation_auc)}; on the live window "
        f"{_num(live['auc'])} over {live['count']} judged items"
        + ("  <- drift: the model has lost skill, retrain it" if model.drift else ""),
        f"  live precision {_num(live['precision'], '.1%')}, recall "
        f"{_num(live['recall'], '.1%')} at the threshold",
        f"  escalations added by the model: {model.added}; scored above the threshold but "
        f"proceeded: {model.would_add} ({model.would_add_needed} of them needed a person)",
        f"  escalated for low confidence alone but scored under the threshold: "
        f"{model.escalated_below} ({model.escalated_below_needed_nobody} needed nobody)",
    ]
    if model.prepare_above is not None:
        lines.append(
            f"  prepared before it fails: {model.prepared} proceeded scoring above "
            f"{model.prepare_above:g} and were posted for review ({model.prepared_needed} of "
            "them needed a person)"
        )
    before, since = model.before, model.since
    if before is not None and since is not None and model.activated_at is not None:
        lines.append(
            f"  since it was activated ({model.activated_at:%Y-%m-%d %H:%M}): escalation rate "
            f"{_num(since.escalation_rate, '.1%')} of {since.requests} (before: "
            f"{_num(before.escalation_rate, '.1%')} of {before.requests}), escalation recall "
            f"{_num(since.recall, '.1%')} (before: {_num(before.recall, '.1%')})"
        )
    return lines


def html_section(standing: StandingFigures, model: ModelFigures | None) -> str:
    """The same figures as `text_lines`, as two sections of the HTML report."""
    text = text_lines(standing, model)
    split = text.index("Model:")
    parts = []
    for title, body in (("Standing approvals", text[2 : split - 1]), ("Model", text[split + 1 :])):
        items = "".join(f"<li>{html.escape(line.strip())}</li>" for line in body)
        parts.append(f"<h2>{title}</h2>\n<ul>{items}</ul>\n")
    return "".join(parts)
