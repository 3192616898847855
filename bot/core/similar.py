"""Approve + allow similar: the form every channel prefills from an item, read back as a
grant, and the approve-then-grant it is recorded with.

The web inbox, Slack and Teams draw the form their own way; what it proposes, how its text
becomes a `GrantRequest` and the order of the checks live here once, so a grant refused in
one channel is refused alike in the others.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from bot.core.domain import ApprovalRequest, Status, Verdict
from bot.core.errors import InvalidInput, NotAllowed, NotFound
from bot.core.learning import GrantRequest, StandingApproval
from bot.core.ports import ReviewService
from routing import Lane, Risk, parse_duration

# Payload keys that name a counterparty rather than one transaction: a condition on them
# describes "requests like this"; an invoice number would describe only this one.
_SIMILAR_KEYS = ("vendor", "payee", "merchant", "supplier", "customer", "recipient", "category")
DEFAULT_TTL = "2h"
DEFAULT_USES = "10"
FIELDS = ("when", "ttl", "max_uses", "reason", "max_risk", "allow_high")
"""The form's fields, as every channel names its inputs."""
RATIONALE_PREFIX = "approved and allowed similar: "


@dataclass
class SimilarForm:
    """The form's fields as text, as shown and as posted back.

    `errors` names each bad field (a key of FIELDS) with a sentence; `refusal` is a sentence
    saying why nothing may be recorded at all (the reviewer may not approve, or not grant).
    """

    when: str = ""
    ttl: str = DEFAULT_TTL
    max_uses: str = DEFAULT_USES
    max_risk: str = Risk.MEDIUM.value
    reason: str = ""
    allow_high: bool = False
    errors: dict[str, str] = field(default_factory=dict)
    refusal: str | None = None


def offered(item: ApprovalRequest) -> bool:
    """Whether a grant could cover items like `item`: it waits for an approve verdict in the
    escalate lane and one approval decides it (two-person items are never granted)."""
    return (
        item.status is Status.PENDING
        and item.lane is Lane.ESCALATE
        and item.approvals_required == 1
    )


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
    """The posted fields, trimmed to sane lengths; `allow_high` is ticked when "on"."""
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


def sentence(text: str) -> str:
    """`text` as a sentence: capitalised, ending in one full stop."""
    text = text.strip().rstrip(".")
    return text[:1].upper() + text[1:] + "." if text else ""


async def approve_and_allow(
    review: ReviewService,
    request_id: str,
    form: SimilarForm,
    reviewer: str,
    *,
    channel: str,
    name: str | None = None,
) -> StandingApproval | None:
    """Approve `request_id` as `reviewer` and grant a standing approval for requests like it.

    The vote (`prepare_vote` for approve) and the grant (`check_standing`) are both checked
    before anything is recorded, so a refused grant leaves the item as it was. Returns the
    grant, or None with `form.errors` (by field) or `form.refusal` set when nothing was
    recorded. Raises NotFound for an unknown request.
    """
    try:
        ballot = await review.prepare_vote(request_id, reviewer, Verdict.APPROVE)
    except NotAllowed as exc:
        form.refusal = sentence(exc.message)
        return None
    item = ballot.request
    if not offered(item):
        form.refusal = (
            "Approve + allow similar is offered only on items awaiting one approval in the "
            "escalate lane."
        )
        return None
    ask = grant_request(form, item, reviewer)
    if ask is None:
        return None
    try:
        review.check_standing(ask)
    except InvalidInput as exc:
        if exc.field in FIELDS:
            form.errors[exc.field] = sentence(exc.problem)
        else:
            form.refusal = sentence(exc.problem)
        return None
    except (NotAllowed, NotFound) as exc:
        form.refusal = sentence(str(exc))
        return None
    try:
        await review.vote(
            request_id,
            reviewer,
            Verdict.APPROVE,
            channel=channel,
            rationale=f"{RATIONALE_PREFIX}{ask.reason}",
            name=name,
        )
    except (NotAllowed, InvalidInput) as exc:
        # Decided or changed by someone else since the check: still nothing recorded.
        form.refusal = sentence(exc.message if isinstance(exc, NotAllowed) else exc.problem)
        return None
    return await review.grant_standing(ask, channel=channel)
