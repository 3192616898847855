"""Domain values of learning from the history: standing approvals and prediction models."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from routing import Risk, RoutingInput
from signoff_client.canonical import canonical_json, sha256_hex

STANDING_CHANNEL = "standing"
"""The channel of a vote cast by a standing approval on its grantor's behalf."""


def _isoformat(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class StandingApproval:
    """A reviewer's "approve requests like this" for a while, with a cap on uses.

    It covers escalate-lane requests of `agent_id` whose action kind is `kind`, that need
    one approval, whose risk is at most `max_risk` and (when `when` is set) for which the
    CEL condition holds. `uses` only grows, one per request it approved, never past
    `max_uses`.
    """

    id: str
    grantor: str
    agent_id: str
    kind: str
    when: str | None
    max_risk: Risk
    max_uses: int
    reason: str
    created_at: datetime
    expires_at: datetime
    uses: int = 0
    revoked_at: datetime | None = None
    revoked_by: str | None = None

    def active_at(self, now: datetime) -> bool:
        """Whether the grant may still approve a request arriving at `now`."""
        return self.revoked_at is None and now < self.expires_at and self.uses < self.max_uses

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "grantor": self.grantor,
            "agent_id": self.agent_id,
            "kind": self.kind,
            "when": self.when,
            "max_risk": self.max_risk.value,
            "max_uses": self.max_uses,
            "uses": self.uses,
            "reason": self.reason,
            "created_at": _isoformat(self.created_at),
            "expires_at": _isoformat(self.expires_at),
            "revoked_at": _isoformat(self.revoked_at),
            "revoked_by": self.revoked_by,
        }


@dataclass(frozen=True)
class GrantRequest:
    """What a reviewer asks for: `signoff standing grant` or the inbox's form."""

    grantor: str
    agent_id: str
    kind: str
    ttl: timedelta
    max_uses: int
    reason: str
    when: str | None = None
    max_risk: Risk = Risk.MEDIUM
    allow_high: bool = False


@dataclass(frozen=True)
class StandingUse:
    """One use of a grant, taken in the transaction that stores the request it approves.

    The repository counts it only while the grant is unrevoked, unexpired at `at` and
    under its cap; otherwise the whole change is refused with StandingExhausted.
    """

    grant_id: str
    at: datetime


@dataclass(frozen=True)
class PredictionModel:
    """One trained version of the escalation model, as stored in the database.

    `parameters` is plain JSON (coefficients, scaler, vocabularies: see
    bot.oversight.predict), never a pickled object, and `sha256` is taken over it, the
    feature list and the metrics, so a row edited by hand no longer matches its digest.
    """

    version: int
    created_at: datetime
    created_by: str
    window_start: datetime
    window_end: datetime
    features: tuple[str, ...]
    parameters: Mapping[str, Any] = field(hash=False)
    metrics: Mapping[str, Any] = field(hash=False)
    sha256: str
    active: bool = False
    activated_at: datetime | None = None

    @staticmethod
    def digest(
        features: tuple[str, ...], parameters: Mapping[str, Any], metrics: Mapping[str, Any]
    ) -> str:
        """The sha256 a model's stored content must have."""
        return sha256_hex(
            canonical_json(
                {"features": list(features), "parameters": parameters, "metrics": metrics}
            )
        )

    @property
    def intact(self) -> bool:
        """Whether the stored content still matches the digest taken when it was trained."""
        return self.digest(self.features, self.parameters, self.metrics) == self.sha256

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "created_at": _isoformat(self.created_at),
            "created_by": self.created_by,
            "window_start": _isoformat(self.window_start),
            "window_end": _isoformat(self.window_end),
            "features": list(self.features),
            "metrics": dict(self.metrics),
            "sha256": self.sha256,
            "active": self.active,
            "activated_at": _isoformat(self.activated_at),
        }


class Predictor(Protocol):
    """Scores a submission with the active escalation model."""

    def score(self, inp: RoutingInput, at: datetime) -> float | None:
        """The predicted probability (0..1) that a person must step in; None without a
        model. Never raises: a model that cannot score leaves the request unscored."""
        ...

    def observe(self, inp: RoutingInput, escalated: bool) -> None:
        """Learn how a routed request went (the recent escalation rates); never raises."""
        ...
