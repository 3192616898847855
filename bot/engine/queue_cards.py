"""Queue cards: a burst reaches a tier's reviewers in seconds, whatever the platform's rate.

Slack takes about one message per second per channel, Teams about two per thread, so 200
items escalated at once would reach their reviewers one card at a time over minutes. When a
tier's chat destination has `after` or more of its own cards still waiting to go out, that
destination gets one **queue card**: it @-mentions the tier's reviewers and lists and counts
what waits at the tier (oldest first, each item linked to its inbox page, where it can be
decided at once). It is redrawn in place as items arrive and are decided, and closed once
every item there has its own card; the items' own cards keep going out as the rate allows.

A destination is a (channel, target) pair with its own rate budget (a Slack channel, a Teams
channel; a reviewer's direct-message conversation would be one more), so each gets its own
queue card when its own backlog is deep.

`QueuePlanner.plan` runs every second or so on every replica. Queue cards are stored as
`BatchCard`s of kind `QUEUE_KIND` (one open card per tier and destination, by the same
partial unique index), written conditionally with their outbox rows, so replicas planning
at once post one card per destination and a restart loses no post. A redraw's outbox row
carries the card version it was queued for: an older one finds a newer queued and stands
down, so a burst's many changes cost few edits of the platform's budget.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter, defaultdict

from bot.core.domain import (
    QUEUE_KIND,
    ApprovalRequest,
    BatchCard,
    BatchStatus,
    OutboxKind,
    OutboxMessage,
    OutboxStatus,
    Status,
    new_id,
)
from bot.engine.machine import Engine

log = logging.getLogger("signoff.queue_cards")

QUEUE_CHANNELS = frozenset({"slack", "teams"})
_SCAN_LIMIT = 5000

Destination = tuple[str, str, str]  # (tier, channel, target)


def queue_destination(channel: str, target: str) -> str:
    """The outbox destination of a queue card's rows: its own, so the card is not capped
    behind the backlog of item cards it stands in for (`bot.core.lanes`)."""
    return f"queue:{channel}:{target}"


class QueuePlanner:
    """Opens, redraws and closes queue cards as backlogs form and drain (module docstring)."""

    def __init__(self, engine: Engine, *, after: int, max_items: int) -> None:
        self.engine = engine
        self.repo = engine.repo
        self.clock = engine.clock
        self.after = after
        self.max_items = max_items

    @property
    def enabled(self) -> bool:
        return self.after > 0

    async def plan(self) -> int:
        """Open, redraw or close queue cards as the backlogs require; returns how many changed.

        Raises StorageError when the database cannot be reached.
        """
        if not self.enabled:
            return 0
        backlog = await self._backlog()
        cards = {
            card.group: card for card in await self.repo.open_batches() if card.kind == QUEUE_KIND
        }
        if not backlog and not cards:
            return 0
        waiting = await self._waiting()
        changed = 0
        for tier in self.engine.policy.tiers:
            items = waiting.get(tier.name, [])
            members = tuple(r.id for r in items[: self.max_items])
            for channel, target in self.engine.targets(tier.name):
                if channel not in QUEUE_CHANNELS:
                    continue
                depth = backlog[(tier.name, channel, target)]
                card = cards.pop((tier.name, QUEUE_KIND, channel, target), None)
                if card is None:
                    if depth >= self.after and items:
                        changed += await self._open(tier.name, channel, target, members, len(items))
                elif depth == 0 or not items:
                    changed += await self._rewrite(card, card.members, 0, BatchStatus.CLOSED)
                elif card.members != members or card.total != len(items):
                    changed += await self._rewrite(card, members, len(items), BatchStatus.OPEN)
        for card in cards.values():  # its tier or channel left the configuration
            changed += await self._rewrite(card, card.members, 0, BatchStatus.CLOSED)
        return changed

    async def _backlog(self) -> Counter[Destination]:
        """Item cards still waiting to be posted, by tier and destination."""
        rows = await self.repo.list_outbox(
            kind=OutboxKind.POST_CARD, status=OutboxStatus.PENDING, limit=_SCAN_LIMIT
        )
        return Counter(
            (
                str(m.payload.get("tier")),
                str(m.payload.get("channel")),
                str(m.payload.get("target")),
            )
            for m in rows
        )

    async def _waiting(self) -> dict[str, list[ApprovalRequest]]:
        """Pending items by the tier they wait at, oldest first."""
        found: dict[str, list[ApprovalRequest]] = defaultdict(list)
        for request in await self.repo.list_awaiting(limit=_SCAN_LIMIT):
            if request.status is Status.PENDING and request.tier is not None:
                found[request.tier].append(request)
        for items in found.values():
            items.sort(key=lambda r: (r.created_at, r.id))
        return dict(found)

    async def _open(
        self, tier: str, channel: str, target: str, members: tuple[str, ...], total: int
    ) -> int:
        now = self.clock.now()
        card = BatchCard(
            id=new_id("que", now),
            tier=tier,
            kind=QUEUE_KIND,
            channel=channel,
            target=target,
            members=members,
            total=total,
            status=BatchStatus.OPEN,
            created_at=now,
            updated_at=now,
        )
        if await self.repo.open_batch(card, (self._message(OutboxKind.POST_BATCH, card, 1),)):
            log.info("queue card %s: %d items wait at %s (%s)", card.id, total, tier, channel)
            return 1
        return 0  # another replica opened it first

    async def _rewrite(
        self, card: BatchCard, members: tuple[str, ...], total: int, status: BatchStatus
    ) -> int:
        updated = dataclasses.replace(
            card, members=members, total=total, status=status, updated_at=self.clock.now()
        )
        message = self._message(OutboxKind.UPDATE_BATCH, card, card.version + 1)
        return int(await self.repo.update_batch(updated, card.version, (message,)))

    def _message(self, kind: OutboxKind, card: BatchCard, version: int) -> OutboxMessage:
        now = self.clock.now()
        return OutboxMessage(
            id=new_id("msg", now),
            kind=kind,
            request_id=None,
            payload={
                "batch_id": card.id,
                "version": version,
                "destination": queue_destination(card.channel, card.target),
            },
            created_at=now,
            next_attempt_at=now,
        )
