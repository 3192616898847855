"""The running parts of one Signoff process, built and stopped in order."""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field

from adapters.web.inbox import WebInbox
from bot.core.domain import AuditEvent, OutboxKind, OutboxMessage, OutboxStatus
from bot.core.ports import Channel, Clock, Notifier, Repository, ResumeTarget
from bot.engine.batches import BatchPlanner
from bot.engine.machine import Engine
from bot.engine.metrics import Metrics
from bot.engine.outbox import OutboxWorker
from bot.engine.queue_cards import QueuePlanner
from bot.engine.scheduler import Scheduler
from bot.engine.waiters import Waiters
from bot.oversight.predict import ActiveModel
from bot.oversight.watch import Watch
from bot.server.audit_wiring import AuditWiring
from bot.server.config import LoadedConfig


@dataclass
class Services:
    config: LoadedConfig
    repo: Repository
    clock: Clock
    engine: Engine
    worker: OutboxWorker
    scheduler: Scheduler
    waiters: Waiters
    metrics: Metrics
    channels: Mapping[str, Channel]
    resume: ResumeTarget
    notifier: Notifier
    watch: Watch
    planner: BatchPlanner
    queues: QueuePlanner
    audit: AuditWiring
    # Refreshes the cost-of-oversight gauges (also a periodic job).
    measure_cost: Callable[[], Awaitable[None]]
    # The escalation model, when prediction.mode is not off.
    model: ActiveModel | None = None
    # Made on first use (bot.server.web.web_inbox): the sign-in links printed at start-up
    # and the mounted inbox share its one-time tokens and session secret.
    web_inbox: WebInbox | None = None
    stack: AsyncExitStack = field(default_factory=AsyncExitStack)
    monotonic: Callable[[], float] = time.monotonic
    wait_poll_interval: float = 1.0

    async def agent_for_key(self, digest: str) -> str | None:
        """Configured keys first (hashes in the config file), then keys stored in the database."""
        for agent in self.engine.agents.values():
            if digest in agent.key_sha256:
                return agent.id
        stored = await self.repo.agent_for_key(digest)
        return stored if stored in self.engine.agents else None

    async def requeue_delivery(self, message: OutboxMessage, *, actor: str) -> OutboxMessage | None:
        now = self.clock.now()
        event = AuditEvent(
            event="delivery_retried",
            at=now,
            request_id=message.request_id,
            actor=actor,
            channel="api",
            data={"delivery": message.id},
        )
        again = await self.repo.requeue_outbox(message.id, now, event)
        if again is not None:
            self.scheduler.kick()
        return again

    async def render_metrics(self) -> bytes:
        pending = await self.repo.pending_by_tier()
        dead = await self.repo.count_outbox(OutboxKind.WEBHOOK, OutboxStatus.DEAD)
        tiers = [t.name for t in self.config.policy.tiers]
        active = await self.repo.alerts(active_only=True)
        return self.metrics.render(pending, tiers, dead, [a.code for a in active])


def secret_lookup(
    config: LoadedConfig, env: Mapping[str, str] | None = None
) -> Callable[[str], str | None]:
    """Webhook secrets are read from the environment at send time and never stored."""
    source = os.environ if env is None else env
    names = {a.id: a.webhook_secret_env for a in config.settings.agent_specs().values()}

    def lookup(agent_id: str) -> str | None:
        name = names.get(agent_id)
        return source.get(name) if name else None

    return lookup
