"""How a request's card looks at one tier: the view every channel draws from."""

from __future__ import annotations

from bot.core.domain import ApprovalRequest, Status
from bot.core.ports import CardView
from routing import Policy


class CardViews:
    """Builds `CardView`s for a policy; shared by the outbox worker and inline posting."""

    def __init__(self, policy: Policy, public_url: str) -> None:
        self.policy = policy
        self.public_url = public_url.rstrip("/")

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
            inbox_url=f"{self.public_url}/requests/{request.id}",
            tier_chain=tuple(t.name for t in self.policy.tiers),
        )
