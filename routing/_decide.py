"""decide(): one request and one policy in, one routing decision out (contract section 4)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from routing._enums import Lane, ReviewState, Risk
from routing._policy import Policy
from routing._rules import RuleError, bind
from routing._sampling import sampled

DecisionStatus = Literal["approved", "pending", "rejected"]


def _empty() -> Mapping[str, Any]:
    return MappingProxyType({})


@dataclass(frozen=True, kw_only=True)
class RoutingInput:
    """What routing sees of a request. Optional fields carry the contract's defaults."""

    request_id: str
    agent_id: str
    action_kind: str
    action_summary: str
    action_payload: Mapping[str, Any] = field(default_factory=_empty)
    confidence: float
    amount: float = 0.0
    currency: str = ""
    reversible: bool = True
    domain: str = ""
    sentiment: float = 0.0
    labels: Mapping[str, Any] = field(default_factory=_empty)
    context: Mapping[str, Any] = field(default_factory=_empty)
    agent_stopped: bool = False
    # The escalation model's score (0..1), None when no model scored the request.
    predicted_escalation: float | None = None


@dataclass(frozen=True)
class RoutingDecision:
    """Where a request goes, why, and who must look at it."""

    status: DecisionStatus
    lane: Lane
    risk: Risk
    reasons: tuple[str, ...]
    tier: str | None
    approvals_required: int
    review: ReviewState
    rule_errors: tuple[RuleError, ...] = ()
    # Posted for review because the model scored it near its threshold, not by sampling.
    prepared: bool = False

    @property
    def needs_card(self) -> bool:
        """Whether a card must be posted: a pending escalation, or a queued review."""
        escalated = self.status == "pending" and self.lane is Lane.ESCALATE
        return escalated or self.review is ReviewState.QUEUED


def decide(inp: RoutingInput, policy: Policy) -> RoutingDecision:
    """Route one request: stop button first, then risk rules, then confidence.

    Never raises for a rule that fails at evaluation: such a rule escalates the request at
    high risk with reason ``rule_error:<name>`` and is reported in ``rule_errors``.
    """
    if inp.agent_stopped:
        return RoutingDecision(
            status="rejected",
            lane=Lane.ESCALATE,
            risk=Risk.HIGH,
            reasons=("agent_stopped",),
            tier=None,
            approvals_required=1,
            review=ReviewState.NONE,
        )
    by_rules = _apply_rules(inp, policy)
    if by_rules is not None:
        return by_rules
    routing = policy.routing
    lane = confidence_lane(inp.confidence, routing.autonomous_at, routing.review_at)
    if lane is not Lane.ESCALATE and predicted_to_escalate(inp, policy):
        return RoutingDecision(
            status="pending",
            lane=Lane.ESCALATE,
            risk=Risk.MEDIUM,
            reasons=("predicted_escalation",),
            tier=policy.start_tier(Risk.MEDIUM),
            approvals_required=1,
            review=ReviewState.NONE,
        )
    if lane is Lane.AUTONOMOUS:
        return _approved(inp, policy, Lane.AUTONOMOUS, routing.autonomous_sample_rate)
    if lane is Lane.REVIEW:
        return _approved(inp, policy, Lane.REVIEW, routing.review_sample_rate)
    return RoutingDecision(
        status="pending",
        lane=Lane.ESCALATE,
        risk=Risk.MEDIUM,
        reasons=("low_confidence",),
        tier=policy.start_tier(Risk.MEDIUM),
        approvals_required=1,
        review=ReviewState.NONE,
    )


def predicted_to_escalate(inp: RoutingInput, policy: Policy) -> bool:
    """The built-in rule `predicted_escalation > prediction.threshold`: true only when the
    policy was compiled with a threshold (prediction mode active) and a model scored it."""
    above = policy.predicted_escalation_above
    score = inp.predicted_escalation
    return above is not None and score is not None and score > above


def _prepared(inp: RoutingInput, policy: Policy) -> bool:
    # Scores above the threshold escalate before this is asked, so what remains is the band
    # just under it: items that proceed but that the model thinks may well come back.
    above = policy.prepare_above
    score = inp.predicted_escalation
    return above is not None and score is not None and score > above


def confidence_lane(confidence: float, autonomous_at: float, review_at: float) -> Lane:
    """The lane by confidence alone, for a request no risk rule matched.

    ``decide`` uses it after the rules; threshold calibration replays it with candidate
    thresholds, so both answer the same way by construction.
    """
    if confidence >= autonomous_at:
        return Lane.AUTONOMOUS
    if confidence >= review_at:
        return Lane.REVIEW
    # Also reached by a NaN confidence, which compares false everywhere: the safe lane.
    return Lane.ESCALATE


def _apply_rules(inp: RoutingInput, policy: Policy) -> RoutingDecision | None:
    variables = bind(_variables(inp))
    reasons: list[str] = []
    errors: list[RuleError] = []
    risk = Risk.LOW
    approvals = 1
    for compiled in policy._compiled:
        outcome = compiled.evaluate(variables)
        if outcome is False:
            continue
        rule = compiled.rule
        if isinstance(outcome, RuleError):
            # Fail safe: a rule that cannot answer counts as matched, at high risk.
            errors.append(outcome)
            reasons.append(f"rule_error:{rule.name}")
            risk = Risk.HIGH
        else:
            reasons.append(rule.name)
            risk = max(risk, rule.risk)
        approvals = max(approvals, rule.approvals)
    if not reasons:
        return None
    return RoutingDecision(
        status="pending",
        lane=Lane.ESCALATE,
        risk=risk,
        reasons=tuple(reasons),
        tier=policy.start_tier(risk),
        approvals_required=approvals,
        review=ReviewState.NONE,
        rule_errors=tuple(errors),
    )


def rule_variables(inp: RoutingInput) -> dict[str, Any]:
    """The variables a CEL rule sees for `inp` (standing approvals' conditions see the same)."""
    return _variables(inp)


def _variables(inp: RoutingInput) -> dict[str, Any]:
    # Numbers go in as doubles whatever the caller passed: cel compares int with double
    # (`amount > 500` works) but refuses mixed arithmetic, so a rule must see one type.
    return {
        "action": {
            "kind": inp.action_kind,
            "summary": inp.action_summary,
            "payload": dict(inp.action_payload),
        },
        "confidence": float(inp.confidence),
        "amount": float(inp.amount),
        "currency": inp.currency,
        "reversible": bool(inp.reversible),
        "domain": inp.domain,
        "sentiment": float(inp.sentiment),
        "agent_id": inp.agent_id,
        "labels": dict(inp.labels),
        "context": dict(inp.context),
        # 0 when no model scored the request, so a rule comparing it never fails.
        "predicted_escalation": float(inp.predicted_escalation or 0.0),
    }


def _approved(inp: RoutingInput, policy: Policy, lane: Lane, rate: float) -> RoutingDecision:
    prepared = _prepared(inp, policy)
    if prepared:
        # The reviewers who would decide it had the model escalated it get it now, whatever
        # the sampling says, so the card and its context are in their queue if it fails.
        review, tier = ReviewState.QUEUED, policy.start_tier(Risk.MEDIUM)
    elif sampled(inp.request_id, rate):
        review, tier = ReviewState.QUEUED, policy.start_tier(Risk.LOW)
    elif lane is Lane.REVIEW or rate > 0:
        # A review-lane item left unposted was sampled out, even at rate 0; an autonomous
        # item is only "sampled out" when after-the-fact review is switched on at all.
        review, tier = ReviewState.SAMPLED_OUT, None
    else:
        review, tier = ReviewState.NONE, None
    return RoutingDecision(
        status="approved",
        lane=lane,
        risk=Risk.LOW,
        reasons=(),
        tier=tier,
        approvals_required=1,
        review=review,
        prepared=prepared,
    )
