"""A policy checked as a whole and compiled, with the tier-chain questions the engine asks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from routing._enums import Risk, TimeoutAction
from routing._errors import PolicyError
from routing._model import DEFAULT_TIERS, RoutingPolicy, Rule, TierSpec
from routing._rules import CompiledRule, compile_rule


@dataclass(frozen=True)
class Policy:
    """A routing policy and its tier chain, checked together and with every rule compiled.

    Construct it with ``compile_policy`` (or directly: construction runs the same checks).
    Tiers are ordered lowest first.

    Raises:
        PolicyError: on construction, see ``compile_policy``.
    """

    routing: RoutingPolicy
    tiers: tuple[TierSpec, ...]
    # The built-in rule `predicted_escalation > threshold` (prediction mode active); None
    # leaves the model's score out of routing.
    predicted_escalation_above: float | None = None
    # "Prepared before it fails" (prediction mode active): a request that proceeds with a
    # score above this (and at most `predicted_escalation_above`) gets its review card posted
    # to the tier a predicted escalation would reach; None prepares nothing.
    prepare_above: float | None = None
    _compiled: tuple[CompiledRule, ...] = field(init=False, repr=False, compare=False)
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Frozen, so the derived fields are set the way dataclasses set them itself.
        object.__setattr__(self, "tiers", tuple(self.tiers))
        object.__setattr__(self, "_index", _index_tiers(self.tiers))
        _check_start_tiers(self.routing, self._index)
        _check_prediction(self.predicted_escalation_above, self.prepare_above)
        object.__setattr__(self, "_compiled", _compile_rules(self.routing))

    def rule(self, name: str) -> Rule | None:
        """The configured rule called ``name``; None for a name no rule has (any more)."""
        for rule in self.routing.rules:
            if rule.name == name:
                return rule
        return None

    def tier(self, name: str) -> TierSpec:
        """The tier called ``name``.

        Raises:
            KeyError: no tier has that name.
        """
        return self.tiers[self.tier_index(name)]

    def tier_index(self, name: str) -> int:
        """The position of tier ``name`` in the chain, 0 for the lowest.

        Raises:
            KeyError: no tier has that name.
        """
        try:
            return self._index[name]
        except KeyError:
            raise KeyError(f"unknown tier {name!r}") from None

    def next_tier(self, name: str) -> str | None:
        """The tier above ``name``, or None when ``name`` is the top tier.

        Raises:
            KeyError: no tier has that name.
        """
        index = self.tier_index(name) + 1
        return self.tiers[index].name if index < len(self.tiers) else None

    @property
    def top_tier(self) -> str:
        """The name of the last (highest) tier."""
        return self.tiers[-1].name

    def start_tier(self, risk: Risk) -> str:
        """The tier where an escalated request of this risk starts.

        A risk missing from ``routing.start_tier`` starts at the lowest tier. When the
        config leaves ``start_tier`` out and its tiers are not named junior/senior/manager,
        risks map by position (low: first, medium: second, high: last), so a file with
        only ``agents:`` and ``tiers:`` still routes with the default policy.
        """
        name = self.routing.start_tier.get(risk)
        if name is not None and name in self._index:
            return name
        if name is None:
            return self.tiers[0].name
        position = {Risk.LOW: 0, Risk.MEDIUM: min(1, len(self.tiers) - 1)}.get(
            risk, len(self.tiers) - 1
        )
        return self.tiers[position].name

    def timeout_action(self, risk: Risk) -> TimeoutAction:
        """What happens when a request of this risk outlives the last tier's SLA.

        A risk missing from an ``on_timeout`` map is rejected, the safe outcome.
        """
        on_timeout = self.routing.on_timeout
        if isinstance(on_timeout, dict):
            return on_timeout.get(risk, TimeoutAction.REJECT)
        return on_timeout

    def tiers_of(self, reviewer: str) -> tuple[str, ...]:
        """The names of the tiers that list ``reviewer``, lowest first."""
        return tuple(tier.name for tier in self.tiers if reviewer in tier.reviewers)

    def may_act(self, reviewer: str, tier_name: str) -> bool:
        """Whether ``reviewer`` may vote on an item sitting at ``tier_name``.

        True when the reviewer is listed at that tier or at any higher one (a manager may
        act on junior items), never for a lower one.

        Raises:
            KeyError: no tier has that name.
        """
        lowest = self.tier_index(tier_name)
        return any(reviewer in tier.reviewers for tier in self.tiers[lowest:])

    def is_top_tier_reviewer(self, reviewer: str) -> bool:
        """Whether ``reviewer`` is listed at the top tier (who may stop and start agents)."""
        return reviewer in self.tiers[-1].reviewers


def compile_policy(
    routing: RoutingPolicy,
    tiers: Sequence[TierSpec],
    *,
    predicted_escalation_above: float | None = None,
    prepare_above: float | None = None,
) -> Policy:
    """Check a routing policy against its tiers and compile every rule once.

    Raises:
        PolicyError: no tiers; two tiers share a name; a ``start_tier`` value names no
            tier; a rule does not compile (the problem names the rule, line and column);
            a rule uses a variable that routing does not provide.
    """
    return Policy(
        routing=routing,
        tiers=tuple(tiers),
        predicted_escalation_above=predicted_escalation_above,
        prepare_above=prepare_above,
    )


def default_policy() -> Policy:
    """The built-in policy: default thresholds and rules over the default three tiers."""
    return compile_policy(RoutingPolicy(), DEFAULT_TIERS)


def _check_prediction(above: float | None, prepare_above: float | None) -> None:
    if prepare_above is None:
        return
    if above is None:
        raise PolicyError("prediction.prepare_margin", "prepares only in prediction mode active")
    if not 0 <= prepare_above < above:
        raise PolicyError(
            "prediction.prepare_margin",
            f"the prepared band must start at 0 or above and below the threshold {above} "
            f"(it starts at {prepare_above})",
        )


def _index_tiers(tiers: tuple[TierSpec, ...]) -> dict[str, int]:
    if not tiers:
        raise PolicyError("tiers", "at least one tier is required")
    index: dict[str, int] = {}
    for position, tier in enumerate(tiers):
        if tier.name in index:
            raise PolicyError(
                f"tiers[{position}].name",
                f"duplicate tier name {tier.name!r} (also tiers[{index[tier.name]}])",
            )
        index[tier.name] = position
    return index


def _check_start_tiers(routing: RoutingPolicy, index: dict[str, int]) -> None:
    if "start_tier" not in routing.model_fields_set:
        return  # the default names fall back to tier positions (Policy.start_tier)
    for risk, name in routing.start_tier.items():
        if name not in index:
            known = ", ".join(index)
            raise PolicyError(
                f"routing.start_tier.{risk}",
                f"{name!r} is not a tier (tiers: {known})",
            )


def _compile_rules(routing: RoutingPolicy) -> tuple[CompiledRule, ...]:
    compiled: list[CompiledRule] = []
    for position, rule in enumerate(routing.rules):
        outcome = compile_rule(rule)
        if isinstance(outcome, str):
            raise PolicyError(f"routing.rules[{position}].when", outcome)
        compiled.append(outcome)
    return tuple(compiled)
