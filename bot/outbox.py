"""The outbox worker: performs the side effects the engine committed (cards, webhooks).

Rows are claimed with a lease, performed, and finished with their audit events in one
transaction. A crash between commit and delivery leaves the row pending; the next claim
(here or on another replica, once the lease expires) performs it: at-least-once.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Mapping
from datetime import timedelta

from bot.domain import (
    ApprovalRequest,
    AuditEvent,
    CardRef,
    OutboxKind,
    OutboxMessage,
    OutboxResult,
    OutboxStatus,
    Status,
    new_id,
)
from bot.errors import DeliveryError, StorageError
from bot.metrics import Metrics
from bot.ports import CardView, Channel, Clock, Repository, ResumeTarget, WebhookDelivery
from bot.retry import next_delay
from routing import Policy

log = logging.getLogger("signoff.outbox")

LEASE = timedelta(seconds=60)


class OutboxWorker:
    def __init__(
        self,
        repo: Repository,
        policy: Policy,
        clock: Clock,
        *,
        channels: Mapping[str, Channel],
        resume: ResumeTarget,
        secrets: Callable[[str], str | None],
        metrics: Metrics,
        public_url: str,
        owner: str | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.repo = repo
        self.policy = policy
        self.clock = clock
        self.channels = dict(channels)
        self.resume = resume
        self.secrets = secrets
        self.metrics = metrics
        self.public_url = public_url.rstrip("/")
        self.owner = owner or new_id("worker")
        self.rng = rng or random.Random()

    async def drain(self, batch: int = 50, max_rounds: int = 100) -> int:
        """Perform every due message; returns how many attempts were made."""
        performed = 0
        for _ in range(max_rounds):
            messages = await self.repo.claim_outbox(self.owner, self.clock.now(), LEASE, batch)
            if not messages:
                break
            for message in messages:
                result = await self._perform(message)
                await self.repo.finish_outbox(message.id, self.owner, result)
                performed += 1
        return performed

    async def _perform(self, message: OutboxMessage) -> OutboxResult:
        try:
            if message.kind is OutboxKind.WEBHOOK:
                return await self._webhook(message)
            request = await self.repo.get(message.request_id or "")
            if request is None:
                return OutboxResult(OutboxStatus.DONE, error="request no longer exists")
            if message.kind is OutboxKind.POST_CARD:
                return await self._post_card(message, request)
            if message.kind is OutboxKind.UPDATE_CARDS:
                await self._update_cards(request)
                return OutboxResult(OutboxStatus.DONE)
            await self._remind(message, request)
            return OutboxResult(OutboxStatus.DONE)
        except DeliveryError as exc:
            return self._failed(message, str(exc), exc.retryable, exc.retry_after)
        except StorageError:
            raise
        except Exception as exc:  # a channel bug must not wedge the queue
            log.exception("outbox %s (%s) failed", message.id, message.kind.value)
            return self._failed(message, f"{type(exc).__name__}: {exc}", True, None)

    def _failed(
        self, message: OutboxMessage, error: str, retryable: bool, retry_after: float | None
    ) -> OutboxResult:
        now = self.clock.now()
        delay = next_delay(message.attempts + 1, retry_after, self.rng) if retryable else None
        if delay is None:
            return OutboxResult(OutboxStatus.DEAD, error=error)
        return OutboxResult(OutboxStatus.PENDING, next_attempt_at=now + delay, error=error)

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

    async def _post_card(self, message: OutboxMessage, request: ApprovalRequest) -> OutboxResult:
        if not request.awaiting_verdict or request.tier != message.payload["tier"]:
            # Decided or moved on before the card went out: an outdated card helps nobody.
            return OutboxResult(OutboxStatus.DONE, error="skipped: request moved on")
        channel_name = str(message.payload["channel"])
        channel = self.channels.get(channel_name)
        if channel is None:
            return OutboxResult(OutboxStatus.DEAD, error=f"channel {channel_name} is not enabled")
        tier = str(message.payload["tier"])
        target = str(message.payload["target"])
        ref = await channel.post_card(self.view(request, tier, target))
        now = self.clock.now()
        if len(request.history) <= 1:
            self.metrics.time_to_escalate.observe(
                max((now - request.created_at).total_seconds(), 0.0)
            )
        card = CardRef(request.id, channel_name, tier, dict(ref), now)
        event = AuditEvent(
            event="posted",
            at=now,
            request_id=request.id,
            channel=channel_name,
            risk=request.risk.value,
            data={"tier": tier, "target": target},
        )
        return OutboxResult(OutboxStatus.DONE, card=card, audit=(event,))

    async def _update_cards(self, request: ApprovalRequest) -> None:
        for card in await self.repo.cards(request.id):
            channel = self.channels.get(card.channel)
            if channel is not None:
                target = str(card.ref.get("target", card.tier))
                await channel.update_card(card.ref, self.view(request, card.tier, target))

    async def _remind(self, message: OutboxMessage, request: ApprovalRequest) -> None:
        if request.status is not Status.PENDING:
            return
        for card in await self.repo.cards(request.id):
            channel = self.channels.get(card.channel)
            if channel is not None and card.tier == message.payload.get("tier"):
                target = str(card.ref.get("target", card.tier))
                await channel.remind(card.ref, self.view(request, card.tier, target))

    async def _webhook(self, message: OutboxMessage) -> OutboxResult:
        agent_id = str(message.payload.get("agent_id", ""))
        delivery = WebhookDelivery(
            id=message.id,
            url=str(message.payload["url"]),
            body=message.payload["body"],
            secret=self.secrets(agent_id),
            attempt=message.attempts + 1,
        )
        attempt = await self.resume.deliver(delivery)
        now = self.clock.now()

        def event(name: str, **data: object) -> AuditEvent:
            return AuditEvent(
                event=name,
                at=now,
                request_id=message.request_id,
                channel="webhook",
                data={"delivery": message.id, "attempt": delivery.attempt, **data},
            )

        if attempt.ok:
            self.metrics.deliveries.labels(result="success").inc()
            return OutboxResult(
                OutboxStatus.DONE, audit=(event("delivered", status_code=attempt.status_code),)
            )
        error = attempt.error or f"HTTP {attempt.status_code}"
        delay = (
            None if attempt.gone else next_delay(delivery.attempt, attempt.retry_after, self.rng)
        )
        failed = event("delivery_failed", status_code=attempt.status_code, error=error)
        if delay is None:
            self.metrics.deliveries.labels(result="dead").inc()
            return OutboxResult(OutboxStatus.DEAD, error=error, audit=(failed,))
        self.metrics.deliveries.labels(result="retry").inc()
        return OutboxResult(
            OutboxStatus.PENDING, next_attempt_at=now + delay, error=error, audit=(failed,)
        )
