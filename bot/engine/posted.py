"""A card posted: what is recorded (the card's reference and the `posted` audit event) and
measured (time to escalate), whether the card went out inline in the submit's transaction
(the web inbox) or later through the outbox worker (Slack, Teams)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from bot.core.domain import ApprovalRequest, AuditEvent, CardRef
from bot.engine.metrics import Metrics


def card_posted(
    request: ApprovalRequest,
    *,
    channel: str,
    tier: str,
    target: str,
    ref: Mapping[str, Any],
    now: datetime,
    measured: bool,
) -> tuple[CardRef, AuditEvent]:
    """The card's reference and its `posted` event. `measured`: whether the channel has
    reviewers of the tier, so the copy counts towards time to escalate (bot.escalation)."""
    card = CardRef(request.id, channel, tier, dict(ref), now)
    event = AuditEvent(
        event="posted",
        at=now,
        request_id=request.id,
        channel=channel,
        risk=request.risk.value,
        data={"tier": tier, "target": target, "measured": measured},
    )
    return card, event


def observe_escalation(
    metrics: Metrics, request: ApprovalRequest, channel: str, now: datetime
) -> None:
    """Submit to card posted, for the first tier's cards only (a later tier's card measures
    the SLA, not how fast Signoff escalates)."""
    if len(request.history) <= 1:
        metrics.time_to_escalate.labels(channel=channel).observe(
            max((now - request.created_at).total_seconds(), 0.0)
        )
