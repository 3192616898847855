"""The inbox's "Approve + allow similar" form: prefilled from an item, read back as a grant."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from bot.core.domain import ApprovalRequest
from bot.core.learning import GrantRequest
from routing import Risk, parse_duration

# Payload keys that name a counterparty rather than one transaction: a condition on them
# describes "requests like this"; an invoice number would describe only this one.
_SIMILAR_KEYS = ("vendor", "payee", "merchant", "supplier", "customer", "recipient", "category")
DEFAULT_TTL = "2h"
DEFAULT_USES = "10"


@dataclass
class SimilarForm:
    """The form's fields as text, as shown and as posted back."""

    when: str = ""
    ttl: str = DEFAULT_TTL
    max_uses: str = DEFAULT_USES
    max_risk: str = Risk.MEDIUM.value
    reason: str = ""
    allow_high: bool = False
    errors: dict[str, str] = field(default_factory=dict)
    refusal: str | None = None


def prefilled(item: ApprovalRequest) -> SimilarForm:
    """A condition such as `amount <= 200.0 && action.payload.vendor == "ACME"` from `item`."""
    clauses: list[str] = []
    if item.amount > 0 and math.isfinite(item.amount):
        clauses.append(f"amount <= {float(math.ceil(item.amount))}")
    payload = item.action.payload
    for key in _SIMILAR_KEYS:
        value = payload.get(key)
        if isinstance(value, str) and 0 < len(value) <= 80:
            # json.dumps writes a double-quoted literal with escapes that CEL reads alike.
            clauses.append(f"action.payload.{key} == {json.dumps(value, ensure_ascii=False)}")
            break
    if item.domain:
        clauses.append(f"domain == {json.dumps(item.domain, ensure_ascii=False)}")
    # The tightest risk that still covers this item; high also needs "allow high".
    return SimilarForm(when=" && ".join(clauses), max_risk=item.risk.value)


def read(data: Mapping[str, str]) -> SimilarForm:
    """The posted fields, trimmed to sane lengths."""
    return SimilarForm(
        when=data.get("when", "").strip()[:2000],
        ttl=data.get("ttl", "").strip()[:20],
        max_uses=data.get("max_uses", "").strip()[:10],
        max_risk=data.get("max_risk", "").strip(),
        reason=data.get("reason", "").strip()[:2000],
        allow_high=data.get("allow_high") == "on",
    )


def grant_request(form: SimilarForm, item: ApprovalRequest, reviewer: str) -> GrantRequest | None:
    """The grant the form asks for, or None with `form.errors` naming each bad field."""
    ttl: timedelta | None = None
    try:
        ttl = parse_duration(form.ttl)
    except ValueError as exc:
        form.errors["ttl"] = f"{exc}."
    uses = 0
    try:
        uses = int(form.max_uses)
    except ValueError:
        form.errors["max_uses"] = f"{form.max_uses!r} is not a whole number."
    try:
        risk = Risk(form.max_risk)
    except ValueError:
        form.errors["max_risk"] = "Choose low, medium or high."
        risk = Risk.MEDIUM
    if form.errors or ttl is None:
        return None
    return GrantRequest(
        grantor=reviewer,
        agent_id=item.agent_id,
        kind=item.action.kind,
        ttl=ttl,
        max_uses=uses,
        reason=form.reason,
        when=form.when or None,
        max_risk=risk,
        allow_high=form.allow_high,
    )
