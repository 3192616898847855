"""The policy as configured: rules, tiers and thresholds, validated field by field."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from routing._duration import Duration, format_duration
from routing._enums import Risk, TimeoutAction
from routing._explain import check_template

_REVIEWER = re.compile(r"(slack|teams|web):\S+")
Notify = Literal["channel", "dm", "both"]


def _check_reviewer(value: str) -> str:
    if _REVIEWER.fullmatch(value) is None:
        raise ValueError(
            f"{value!r} is not a reviewer: use platform:id with platform slack, teams or web"
        )
    return value


_Reviewer = Annotated[str, AfterValidator(_check_reviewer)]
_Fraction = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]
_Frozen = ConfigDict(extra="forbid", frozen=True)


class Rule(BaseModel):
    """A risk rule: when the CEL expression ``when`` is true, the request escalates."""

    model_config = _Frozen

    name: Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]+$")]
    when: Annotated[str, StringConstraints(min_length=1)]
    risk: Risk = Risk.HIGH
    approvals: Annotated[int, Field(ge=1, le=5)] = 1
    # What a reviewer reads instead of `name`: "Large payment". `explain` is a sentence over
    # the request ("Payment of {amount} {currency} is over the 500 limit"), see explain_rule.
    title: Annotated[str, StringConstraints(min_length=1, max_length=120)] | None = None
    explain: Annotated[str, StringConstraints(min_length=1, max_length=300)] | None = None

    @field_validator("explain")
    @classmethod
    def _known_placeholders(cls, value: str | None) -> str | None:
        if value is not None:
            check_template(value)
        return value

    @property
    def heading(self) -> str:
        """The rule's title, or its name made readable when the config gives none."""
        return self.title or self.name.replace("_", " ").capitalize()


class TierSpec(BaseModel):
    """One step of the escalation chain: who reviews there and how long an item may wait."""

    model_config = _Frozen

    name: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]+$")]
    sla: Duration
    remind_after: Duration | None = None
    slack_channel: Annotated[str, StringConstraints(min_length=1)] | None = None
    teams_channel: Annotated[str, StringConstraints(min_length=1)] | None = None
    reviewers: tuple[_Reviewer, ...] = ()
    # Where the tier's reviewers hear of an item: its channels, direct messages to each
    # named reviewer, or both. A DM is kept in step with the channel card like any copy.
    notify: Notify = "channel"

    @field_validator("remind_after")
    @classmethod
    def _remind_before_sla(cls, value: timedelta | None, info: ValidationInfo) -> timedelta | None:
        sla = info.data.get("sla")
        # A missing sla has already failed on its own; one error about it is enough.
        if value is not None and sla is not None and value >= sla:
            raise ValueError(
                f"remind_after ({format_duration(value)}) must be shorter than "
                f"sla ({format_duration(sla)}), or the reminder never fires"
            )
        return value


DEFAULT_RULES: tuple[Rule, ...] = (
    Rule(
        name="high_value_transaction",
        when='action.kind == "payment" && amount > 500.0',
        risk=Risk.HIGH,
        title="Large payment",
        explain="A payment of {amount} {currency} is over the 500 limit",
    ),
    Rule(
        name="irreversible_action",
        when="!reversible",
        risk=Risk.HIGH,
        approvals=2,
        title="Cannot be undone",
        explain="The agent says this action cannot be undone, so two people must agree",
    ),
    Rule(
        name="negative_sentiment",
        when="sentiment < -0.6",
        risk=Risk.HIGH,
        title="Upset customer",
        explain="The conversation reads as upset (sentiment {sentiment})",
    ),
    Rule(
        name="regulated_domain",
        when='domain in ["legal", "medical", "financial"]',
        risk=Risk.HIGH,
        title="Regulated area",
        explain="This touches a regulated area ({domain})",
    ),
    Rule(
        name="medium_risk_change",
        when='action.kind in ["account_change", "refund", "config_change"] && confidence < 0.7',
        risk=Risk.MEDIUM,
        title="Unsure change to an account, refund or setting",
        explain="The agent is only {confidence} sure about this {action.kind}",
    ),
)

DEFAULT_TIERS: tuple[TierSpec, ...] = (
    TierSpec(name="junior", sla=timedelta(minutes=15), reviewers=("web:admin",)),
    TierSpec(name="senior", sla=timedelta(hours=1), reviewers=("web:admin",)),
    TierSpec(name="manager", sla=timedelta(hours=4), reviewers=("web:admin",)),
)


def _default_start_tier() -> dict[Risk, str]:
    return {Risk.LOW: "junior", Risk.MEDIUM: "senior", Risk.HIGH: "manager"}


class RoutingPolicy(BaseModel):
    """The ``routing:`` section: thresholds, sampling, rules, start tiers, timeout outcome.

    The defaults are the built-in policy of the contract.
    """

    model_config = _Frozen

    autonomous_at: _Fraction = 0.8
    review_at: _Fraction = 0.5
    review_sample_rate: _Fraction = 1.0
    autonomous_sample_rate: _Fraction = 0.0
    rules: tuple[Rule, ...] = DEFAULT_RULES
    start_tier: dict[Risk, str] = Field(default_factory=_default_start_tier)
    on_timeout: TimeoutAction | dict[Risk, TimeoutAction] = TimeoutAction.REJECT

    @field_validator("review_at")
    @classmethod
    def _review_below_autonomous(cls, value: float, info: ValidationInfo) -> float:
        autonomous_at = info.data.get("autonomous_at")
        # An invalid autonomous_at has already been reported; do not pile on.
        if autonomous_at is not None and value > autonomous_at:
            raise ValueError(
                f"review_at ({value}) must not be above autonomous_at ({autonomous_at})"
            )
        return value

    @field_validator("rules")
    @classmethod
    def _unique_rule_names(cls, value: tuple[Rule, ...]) -> tuple[Rule, ...]:
        first_at: dict[str, int] = {}
        for index, rule in enumerate(value):
            if rule.name in first_at:
                raise ValueError(
                    f"duplicate rule name {rule.name!r} "
                    f"(rules[{first_at[rule.name]}] and rules[{index}])"
                )
            first_at[rule.name] = index
        return value

    @field_validator("on_timeout")
    @classmethod
    def _never_approve_high(
        cls, value: TimeoutAction | dict[Risk, TimeoutAction]
    ) -> TimeoutAction | dict[Risk, TimeoutAction]:
        high = value.get(Risk.HIGH) if isinstance(value, dict) else value
        if high is TimeoutAction.APPROVE:
            raise ValueError(
                "approve is not allowed for high risk: a high-risk request must not pass "
                "without a reviewer; use reject or expire for high "
                "(e.g. {low: approve, medium: reject, high: reject})"
            )
        return value
