"""Attention checks: synthetic items whose right answer is known, mixed into review queues.

A canary looks like its neighbours in the queue (same tier, risk and number of approvals as
the real item it follows) but its context carries a disqualifying fact a careful reviewer
sees on the card: a payee on the blocked list, a refund to someone else's card, a legal
hold. The right verdict is always reject. An approved canary counts against the reviewer in
the rubber-stamp figures (bot.oversight); a canary is never delivered to an agent and never
appears in the agents' API or traffic figures.

Which real items a canary follows is decided by a hash of the real item's id (like review
sampling), so every replica takes the same decision and a retried submit adds no second one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bot.core.domain import Action, ApprovalRequest, Status


@dataclass(frozen=True)
class Canary:
    action: Action
    context: Mapping[str, Any]
    amount: float
    currency: str
    confidence: float


_TEMPLATES: tuple[Canary, ...] = (
    Canary(
        Action(
            "payment",
            "Pay invoice NW-20931 (4,870.00 EUR) to Northwind Trading Ltd",
            {"invoice": "NW-20931", "payee": "Northwind Trading Ltd", "iban": "MT84MALT011"},
        ),
        {
            "summary": "Supplier invoice matched to a purchase order; due in 3 days.",
            "checks": [
                "Purchase order PO-7731 matches the amount",
                "Payee Northwind Trading Ltd is on the blocked-payee list (sanctions hit)",
            ],
            "recommendation": "Pay before the due date to keep the early-payment discount.",
        },
        4870.0,
        "EUR",
        0.46,
    ),
    Canary(
        Action(
            "refund",
            "Refund order 88412 (2,400.00 USD) to card ending 9911",
            {"order": 88412, "card_last4": "9911"},
        ),
        {
            "summary": "Customer asks for a refund of a damaged delivery.",
            "customer": {"name": "J. Doe", "card_on_file_last4": "4242"},
            "checks": ["The refund card 9911 is not the customer's card on file (4242)"],
            "recommendation": "Refund in full; the customer is upset.",
        },
        2400.0,
        "USD",
        0.52,
    ),
    Canary(
        Action(
            "delete",
            "Delete the records of 1,204 dormant customer accounts",
            {"accounts": 1204, "table": "customers"},
        ),
        {
            "summary": "Clean-up of accounts inactive for 5 years.",
            "checks": ["412 of these accounts are under an active legal hold"],
            "recommendation": "Delete to meet the data-retention policy.",
        },
        0.0,
        "",
        0.41,
    ),
)


@dataclass(frozen=True)
class CanaryPolicy:
    """`rate` of the items reaching one of `tiers` (all tiers when empty) bring a canary."""

    rate: float
    tiers: frozenset[str] = frozenset()
    agent: str | None = None

    def follows(self, request: ApprovalRequest) -> bool:
        """Whether a canary joins the queue after this real item."""
        if request.canary or request.status is not Status.PENDING or request.tier is None:
            return False
        if self.tiers and request.tier not in self.tiers:
            return False
        return _fraction(request.id) < self.rate


def _fraction(request_id: str) -> float:
    digest = hashlib.sha256(f"canary:{request_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def template_for(request_id: str, templates: Sequence[Canary] = _TEMPLATES) -> Canary:
    """A canary chosen by the followed item's id: different items bring different ones."""
    digest = hashlib.sha256(f"template:{request_id}".encode()).digest()
    return templates[digest[0] % len(templates)]
