"""What channels draw: one request's card at one tier, a batch card, and the inbox link."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from bot.core.domain import (
    ApprovalRequest,
    BatchCard,
    BatchStatus,
    ReasonText,
    ReviewStatus,
    Status,
    batch_blocker,
)
from bot.core.wording import Deadline, Outcome, Wording
from routing import Policy


def inbox_link(public_url: str, request_id: str) -> str:
    """The web inbox page of one request: the one place its URL is built."""
    return f"{public_url.rstrip('/')}/requests/{request_id}"


CardKind = Literal["approval", "review", "escalated", "final"]


@dataclass(frozen=True)
class CardView:
    """What a channel needs to draw one copy of a request's card."""

    request: ApprovalRequest
    tier: str
    target: str
    mentions: tuple[str, ...] = ()
    note: str | None = None
    inbox_url: str | None = None
    tier_chain: tuple[str, ...] = field(default_factory=tuple)
    # The words of the first screen (bot.core.wording): why a person sees it, the amount as
    # money, who must still decide, and what the deadline will do.
    reasons: tuple[ReasonText, ...] = ()
    amount: str | None = None
    who_decides: str = ""
    deadline: Deadline | None = None
    # How it ended, once no verdict is awaited (None while one is).
    outcome: Outcome | None = None

    @property
    def kind(self) -> CardKind:
        """Which card this copy shows now; every channel draws the same four states."""
        request = self.request
        if request.status is Status.PENDING:
            return "escalated" if self.note or request.tier != self.tier else "approval"
        if request.review_status is ReviewStatus.OPEN:
            return "review"
        return "final"


@dataclass(frozen=True)
class BatchView:
    """What a chat channel needs to draw a batch card: the card and its members as they are.

    `items` follow `batch.members` (oldest first); `inbox_url` is the web inbox's base URL.
    """

    batch: BatchCard
    items: tuple[ApprovalRequest, ...]
    inbox_url: str = ""
    # Each item's amount as money (bot.core.wording), by request id; none for no amount.
    amounts: Mapping[str, str] = field(default_factory=dict)
    # The engine's words (amounts as money, deadlines, outcomes), so a batch card and an
    # item's own card say the same.
    wording: Wording | None = None

    def link(self, request_id: str) -> str | None:
        return inbox_link(self.inbox_url, request_id) if self.inbox_url else None

    def selectable(self, request: ApprovalRequest) -> bool:
        """Still decidable from this card: pending at its tier and batch-eligible."""
        return (
            self.batch.status is BatchStatus.OPEN
            and request.tier == self.batch.tier
            and batch_blocker(request) is None
        )

    @property
    def waiting(self) -> tuple[ApprovalRequest, ...]:
        return tuple(r for r in self.items if self.selectable(r))

    @property
    def more(self) -> int:
        """Eligible items of the group not drawn on the card (over `batch.max_items`)."""
        return max(self.batch.total - len(self.batch.members), 0)

    @property
    def closed(self) -> bool:
        """Nothing left to select: drawn without checkboxes or buttons."""
        return not self.waiting


@dataclass(frozen=True)
class QueueView:
    """What a chat channel needs to draw a tier's queue card: what waits there now.

    `items` are the requests waiting at the tier, oldest first (at most the card's
    members); `more` counts those beyond; `mentions` are the tier's reviewers.
    """

    card: BatchCard
    items: tuple[ApprovalRequest, ...]
    mentions: tuple[str, ...] = ()
    inbox_url: str = ""

    def link(self, request_id: str) -> str | None:
        return inbox_link(self.inbox_url, request_id) if self.inbox_url else None

    @property
    def closed(self) -> bool:
        return self.card.status is BatchStatus.CLOSED

    @property
    def waiting(self) -> int:
        return len(self.items) + self.more

    @property
    def more(self) -> int:
        return max(self.card.total - len(self.items), 0)


class CardViews:
    """Builds `CardView`s for a policy; shared by the outbox worker and inline posting."""

    def __init__(self, policy: Policy, public_url: str, wording: Wording | None = None) -> None:
        self.policy = policy
        self.public_url = public_url.rstrip("/")
        self.wording = wording or Wording(policy)

    def view(self, request: ApprovalRequest, tier: str, target: str) -> CardView:
        note = None
        if request.status is Status.PENDING and request.tier != tier:
            note = f"Escalated to {request.tier}"
        spec = self.policy.tier(tier)
        return CardView(
            request=request,
            tier=tier,
            target=target,
            mentions=spec.reviewers,
            note=note,
            inbox_url=inbox_link(self.public_url, request.id),
            tier_chain=tuple(t.name for t in self.policy.tiers),
            reasons=self.wording.reasons(request),
            amount=self.wording.amount(request),
            who_decides=self.wording.who_decides(request),
            deadline=self.wording.deadline(request),
            outcome=None if request.awaiting_verdict else self.wording.outcome(request),
        )
