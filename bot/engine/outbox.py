"""The outbox worker: performs the side effects the engine committed (cards, webhooks).

Rows are claimed with a lease, performed, and finished with their audit events in one
transaction. A crash between commit and delivery leaves the row pending; the next claim
(here or on another replica, once the lease expires) performs it: at-least-once.

Deliveries run concurrently under the caps of `bot.lanes.OutboxCaps`: one lane per kind
of work (cards, alerts, webhooks), so cards never wait behind webhooks, and a cap per
destination, so a receiver that hangs holds only its own slots. A claim takes only rows
of a lane with free slots and skips destinations at their cap; the lease of a delivery
still running is renewed.

The lease owner fences: a worker that stalled (GC pause, SIGSTOP) past its lease, without
renewing it, finds `finish_outbox` refused once another worker took the row over, so its
result is recorded nowhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import timedelta

from bot.core.domain import (
    QUEUE_KIND,
    AgentSpec,
    Alert,
    ApprovalRequest,
    AuditEvent,
    BatchCard,
    BatchStatus,
    OutboxKind,
    OutboxMessage,
    OutboxResult,
    OutboxStatus,
    Status,
    new_id,
)
from bot.core.errors import DeliveryError, RateLimited, StorageError
from bot.core.lanes import LANE_KINDS, LaneName, OutboxCaps, destination
from bot.core.logs import request_context
from bot.core.ports import (
    AlertSink,
    BatchChannel,
    Channel,
    Clock,
    QueueChannel,
    Repository,
    ResumeTarget,
    WebhookDelivery,
)
from bot.core.retry import next_delay
from bot.core.views import BatchView, CardView, CardViews, QueueView
from bot.core.wording import Wording
from bot.engine.metrics import Metrics
from bot.engine.posted import card_posted, observe_escalation
from routing import Policy

log = logging.getLogger("signoff.outbox")

LEASE = timedelta(seconds=60)
# A running delivery's lease is renewed this often (a share of the lease), so a slow
# receiver keeps its message while the attempt lasts; a worker that stops renewing (frozen,
# crashed) loses it to another replica once the lease runs out.
RENEW_SHARE = 1 / 3
# How often a drain with deliveries in flight looks for newly due messages when nothing
# finished and nobody kicked it (retries coming due, rows of other replicas).
IDLE_POLL = 1.0
# How many times (about a second apart) a queue card's redraw waits for its post.
QUEUE_POST_PATIENCE = 60


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
        lease: timedelta = LEASE,
        agents: Mapping[str, AgentSpec] | None = None,
        alert_sinks: Mapping[str, AlertSink] | None = None,
        caps: OutboxCaps | None = None,
        wording: Wording | None = None,
    ) -> None:
        self.repo = repo
        self.policy = policy
        self.clock = clock
        self.channels = dict(channels)
        self.resume = resume
        self.secrets = secrets
        self.metrics = metrics
        self.public_url = public_url.rstrip("/")
        self.views = CardViews(policy, public_url, wording)
        self.owner = owner or new_id("worker")
        self.rng = rng or random.Random()
        self.lease = lease
        self.lost_leases = 0
        self.agents = dict(agents or {})
        self.alert_sinks = dict(alert_sinks or {})
        self.caps = caps or OutboxCaps()
        # What is in flight on this worker, by message id, lane and destination.
        self._running: dict[str, asyncio.Task[None]] = {}
        self._by_lane: Counter[LaneName] = Counter()
        self._by_destination: Counter[str] = Counter()
        self._changed = asyncio.Event()
        self._stopping = False

    def wake(self) -> None:
        """Something was queued: a drain waiting on deliveries in flight claims again now."""
        self._changed.set()

    @property
    def in_flight(self) -> int:
        return len(self._running)

    async def drain(self, batch: int = 50, max_rounds: int = 100) -> int:
        """Perform every due message, concurrently within the caps; returns how many
        attempts were made. Returns once nothing is in flight and nothing more is due
        (or `batch * max_rounds` attempts were started)."""
        started = 0
        budget = batch * max_rounds
        renewer = asyncio.create_task(self._renew_leases())
        try:
            while True:
                self._changed.clear()
                # Deliveries running when the claim began may have kept some due rows out
                # of it (their destination was full): then claim once more before leaving.
                was_running = bool(self._running)
                fresh = 0
                if not self._stopping and started < budget:
                    fresh = await self._claim_and_start(min(batch, budget - started))
                    started += fresh
                if not self._running and not fresh and (not was_running or self._stopping):
                    return started
                if not fresh:
                    # Full, or nothing due: wait for a delivery to end, a kick, or a poll.
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._changed.wait(), IDLE_POLL)
        finally:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer

    async def _claim_and_start(self, limit: int) -> int:
        """One claim per lane with free slots; returns how many deliveries started."""
        fresh = 0
        for lane, kinds in LANE_KINDS.items():
            free = min(
                self.caps.lane(lane) - self._by_lane[lane],
                self.caps.max_in_flight - len(self._running),
                limit - fresh,
            )
            if free <= 0:
                continue
            busy = [d for d, n in self._by_destination.items() if n >= self.caps.per_destination]
            messages = await self.repo.claim_outbox(
                self.owner, self.clock.now(), self.lease, free, kinds=kinds, busy=busy
            )
            give_back: list[str] = []
            for message in messages:
                where = destination(message.kind, message.payload, message.request_id)
                if self._by_destination[where] >= self.caps.per_destination:
                    # Several due for one receiver in one claim: the rest wait their turn
                    # in the table, free for any worker, rather than holding a lease here.
                    give_back.append(message.id)
                    continue
                self._start(message, lane, where)
                fresh += 1
            if give_back:
                await self.repo.release_outbox(give_back, self.owner)
        return fresh

    def _start(self, message: OutboxMessage, lane: LaneName, where: str) -> None:
        self._by_lane[lane] += 1
        self._by_destination[where] += 1
        task = asyncio.create_task(self._deliver(message), name=f"outbox {message.id}")
        self._running[message.id] = task

        def done(_: asyncio.Task[None]) -> None:
            self._running.pop(message.id, None)
            self._by_lane[lane] -= 1
            self._by_destination[where] -= 1
            if self._by_destination[where] <= 0:
                del self._by_destination[where]
            self._changed.set()

        task.add_done_callback(done)

    async def _deliver(self, message: OutboxMessage) -> None:
        try:
            with request_context(message.request_id):
                result = await self._perform(message)
            finished = await self.repo.finish_outbox(message.id, self.owner, result)
        except StorageError as exc:
            # The lease runs out and the message is claimed again: at-least-once.
            log.warning("outbox %s: result not recorded, database unavailable: %s", message.id, exc)
            return
        if not finished:
            self.lost_leases += 1
            log.warning(
                "outbox %s (%s): lease lost to another worker meanwhile; this "
                "attempt is not recorded",
                message.id,
                message.kind.value,
            )

    async def _renew_leases(self) -> None:
        """Keep the leases of deliveries still running, so a slow receiver's message is not
        taken over (and sent twice) while its attempt is alive."""
        every = max(self.lease.total_seconds() * RENEW_SHARE, 0.05)
        while True:
            await asyncio.sleep(every)
            ids = list(self._running)
            if not ids:
                continue
            try:
                kept = await self.repo.renew_outbox(ids, self.owner, self.clock.now() + self.lease)
            except StorageError as exc:
                log.warning("outbox: leases not renewed, database unavailable: %s", exc)
                continue
            if len(kept) < len(ids):
                log.warning("outbox: %d running deliveries lost their lease", len(ids) - len(kept))

    async def stop(self, grace: float = 2.5) -> None:
        """Claim nothing more; give deliveries in flight `grace` seconds, then cancel them
        and give their leases back (their receivers may see them again: at-least-once)."""
        self._stopping = True
        self._changed.set()
        running = list(self._running.values())
        if running:
            await asyncio.wait(running, timeout=grace)
        left = [mid for mid, task in self._running.items() if not task.done()]
        for message_id in left:
            self._running[message_id].cancel()
        if left:
            with contextlib.suppress(StorageError):
                await self.repo.release_outbox(left, self.owner)

    async def _perform(self, message: OutboxMessage) -> OutboxResult:
        try:
            if message.kind is OutboxKind.WEBHOOK:
                return await self._webhook(message)
            if message.kind is OutboxKind.ALERT:
                return await self._alert(message)
            if message.kind in (OutboxKind.POST_BATCH, OutboxKind.UPDATE_BATCH):
                return await self._batch(message)
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
        except RateLimited as exc:
            return self._throttled(str(exc), exc.retry_after)
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

    def _throttled(self, error: str, retry_after: float | None) -> OutboxResult:
        # When the platform said (the adapter added its jitter): a throttled burst must not
        # back off like a broken receiver (5 s, 30 s, 2 min...) nor ever become dead.
        wait = retry_after if retry_after is not None else 1.0
        return OutboxResult(
            OutboxStatus.PENDING,
            next_attempt_at=self.clock.now() + timedelta(seconds=wait),
            error=error,
            counted=False,
        )

    def view(self, request: ApprovalRequest, tier: str, target: str) -> CardView:
        return self.views.view(request, tier, target)

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
        # Only copies in a channel with reviewers of the tier measure time-to-escalate
        # (bot.escalation; the engine noted the others when it queued them).
        measured = message.payload.get("measured", True) is not False
        if measured:
            observe_escalation(self.metrics, request, channel_name, now)
        card, event = card_posted(
            request,
            channel=channel_name,
            tier=tier,
            target=target,
            ref=ref,
            now=now,
            measured=measured,
        )
        return OutboxResult(OutboxStatus.DONE, card=card, audit=(event,))

    async def _alert(self, message: OutboxMessage) -> OutboxResult:
        name = str(message.payload.get("channel", ""))
        sink = self.alert_sinks.get(name)
        if sink is None:
            return OutboxResult(OutboxStatus.DEAD, error=f"no alerts channel for {name}")
        await sink.post_alert(Alert.from_json(message.payload["alert"]))
        return OutboxResult(OutboxStatus.DONE)

    async def batch_view(self, batch: BatchCard) -> BatchView:
        """A batch card with its members as they stand now (decided ones included)."""
        found = [await self.repo.get(request_id) for request_id in batch.members]
        items = tuple(r for r in found if r is not None)
        amounts = {r.id: a for r in items if (a := self.views.wording.amount(r))}
        return BatchView(batch, items, self.public_url, amounts=amounts, wording=self.views.wording)

    async def _batch(self, message: OutboxMessage) -> OutboxResult:
        batch = await self.repo.batch(str(message.payload.get("batch_id", "")))
        if batch is None:
            return OutboxResult(OutboxStatus.DONE, error="batch card no longer exists")
        if batch.kind == QUEUE_KIND:
            return await self._queue(message, batch)
        channel = self.channels.get(batch.channel)
        if not isinstance(channel, BatchChannel):
            return OutboxResult(
                OutboxStatus.DEAD, error=f"channel {batch.channel} cannot draw batch cards"
            )
        if message.kind is OutboxKind.POST_BATCH:
            if batch.ref is not None or batch.status is BatchStatus.CLOSED:
                return OutboxResult(OutboxStatus.DONE, error="skipped: posted or closed already")
            ref = await channel.post_batch(await self.batch_view(batch))
            return OutboxResult(OutboxStatus.DONE, batch_ref=(batch.id, dict(ref)))
        if batch.ref is None:
            if batch.status is BatchStatus.CLOSED:
                return OutboxResult(OutboxStatus.DONE, error="skipped: never posted")
            # Its post is queued or in flight elsewhere; redraw once it has a reference.
            raise DeliveryError(f"batch card {batch.id} is not posted yet", retryable=True)
        try:
            await channel.update_batch(batch.ref, await self.batch_view(batch))
        except DeliveryError as exc:
            if not exc.retryable:
                self.metrics.card_update_failures.labels(channel=batch.channel).inc()
            raise
        return OutboxResult(OutboxStatus.DONE)

    async def queue_view(self, card: BatchCard) -> QueueView:
        """A tier's queue card with what waits there now (decided items drop off)."""
        items = await self.repo.get_many(card.members)
        waiting = tuple(r for r in items if r.status is Status.PENDING and r.tier == card.tier)
        card = dataclasses.replace(card, total=card.total - (len(items) - len(waiting)))
        reviewers = self.policy.tier(card.tier).reviewers if self._has_tier(card.tier) else ()
        return QueueView(card, waiting, tuple(reviewers), self.public_url)

    def _has_tier(self, name: str) -> bool:
        return any(t.name == name for t in self.policy.tiers)

    async def _queue(self, message: OutboxMessage, card: BatchCard) -> OutboxResult:
        """Post or redraw a queue card (bot.engine.queue_cards)."""
        channel = self.channels.get(card.channel)
        if not isinstance(channel, QueueChannel):
            return OutboxResult(
                OutboxStatus.DEAD, error=f"channel {card.channel} cannot draw queue cards"
            )
        if message.kind is OutboxKind.POST_BATCH:
            if card.ref is not None or card.status is BatchStatus.CLOSED:
                return OutboxResult(OutboxStatus.DONE, error="skipped: posted or closed already")
            ref = await channel.post_queue(await self.queue_view(card))
            return OutboxResult(OutboxStatus.DONE, batch_ref=(card.id, dict(ref)))
        version = message.payload.get("version")
        if isinstance(version, int) and card.version > version:
            # A later redraw is queued: it draws what this one would, and more.
            return OutboxResult(OutboxStatus.DONE, error="skipped: a later redraw is queued")
        if card.ref is None:
            if card.status is BatchStatus.CLOSED or message.attempts >= QUEUE_POST_PATIENCE:
                return OutboxResult(OutboxStatus.DONE, error="skipped: never posted")
            # Its post is on its way (a few seconds behind the channel's pace): try again
            # soon rather than after the first 5 s step of a failed delivery.
            return OutboxResult(
                OutboxStatus.PENDING,
                next_attempt_at=self.clock.now() + timedelta(seconds=1),
                error=f"queue card {card.id} is not posted yet",
            )
        await channel.update_queue(card.ref, await self.queue_view(card))
        return OutboxResult(OutboxStatus.DONE)

    async def _update_cards(self, request: ApprovalRequest) -> None:
        """Rewrite every copy of the card. One channel's failure does not keep the others
        stale: all are tried, then the failures are raised together (a retry rewrites
        every copy again, which is harmless: an edit to the same state changes nothing)."""
        failures: list[DeliveryError] = []
        for card in await self.repo.cards(request.id):
            channel = self.channels.get(card.channel)
            if channel is None:
                continue
            target = str(card.ref.get("target", card.tier))
            try:
                await channel.update_card(card.ref, self.view(request, card.tier, target))
            except DeliveryError as exc:
                if not exc.retryable:
                    self.metrics.card_update_failures.labels(channel=card.channel).inc()
                failures.append(exc)
        if failures:
            retryable = [f for f in failures if f.retryable]
            waits = [f.retry_after for f in retryable if f.retry_after is not None]
            if all(isinstance(f, RateLimited) for f in failures):
                raise RateLimited("; ".join(str(f) for f in failures), retry_after=max(waits))
            raise DeliveryError(
                "; ".join(str(f) for f in failures),
                retryable=bool(retryable),
                retry_after=max(waits) if waits else None,
            )

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
        agent = self.agents.get(agent_id)
        resume = agent.resume if agent is not None else None
        labels: Mapping[str, object] = {}
        if resume is not None and message.request_id:
            # Targets other than the webhook find their handle (awakeable id, task token)
            # in the request's labels; read at send time like the secret.
            request = await self.repo.get(message.request_id)
            labels = request.labels if request is not None else {}
        delivery = WebhookDelivery(
            id=message.id,
            url=str(message.payload["url"]),
            body=message.payload["body"],
            secret=self.secrets(agent_id),
            attempt=message.attempts + 1,
            agent_id=agent_id,
            resume=resume,
            labels=labels,
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
            note = {"note": attempt.note} if attempt.note else {}
            delivered = event("delivered", status_code=attempt.status_code, **note)
            return OutboxResult(OutboxStatus.DONE, audit=(delivered,))
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
