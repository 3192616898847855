"""The small vocabularies of routing: lanes, risk levels, timeout actions, review states."""

from __future__ import annotations

from enum import StrEnum


class Lane(StrEnum):
    """Where a request goes: straight through, through after-the-fact review, or to a human."""

    AUTONOMOUS = "autonomous"
    REVIEW = "review"
    ESCALATE = "escalate"


class Risk(StrEnum):
    """How much harm an action can do, ordered ``LOW < MEDIUM < HIGH``.

    The comparison operators follow that order between two ``Risk`` values, because the
    inherited string order ("high" < "low") would make ``max(risks)`` silently wrong.
    """

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"

    @property
    def rank(self) -> int:
        """Position in ``RISK_ORDER``: 0 for low, 1 for medium, 2 for high."""
        return RISK_ORDER.index(self)

    def __lt__(self, other: object) -> bool:
        if isinstance(other, Risk):
            return self.rank < other.rank
        return NotImplemented

    def __le__(self, other: object) -> bool:
        if isinstance(other, Risk):
            return self.rank <= other.rank
        return NotImplemented

    def __gt__(self, other: object) -> bool:
        if isinstance(other, Risk):
            return self.rank > other.rank
        return NotImplemented

    def __ge__(self, other: object) -> bool:
        if isinstance(other, Risk):
            return self.rank >= other.rank
        return NotImplemented


RISK_ORDER: tuple[Risk, ...] = (Risk.LOW, Risk.MEDIUM, Risk.HIGH)


class TimeoutAction(StrEnum):
    """What happens to a pending request once the last tier's SLA has passed."""

    REJECT = "reject"
    EXPIRE = "expire"
    APPROVE = "approve"


class ReviewState(StrEnum):
    """Whether an approved request also gets a card for after-the-fact review."""

    QUEUED = "queued"
    SAMPLED_OUT = "sampled_out"
    NONE = "none"
