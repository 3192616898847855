"""Batch review: plans the digest cards that let a reviewer clear a queue of routine items.

Pending escalate-lane items that one approval decides and that are not high risk are grouped
by (tier, action.kind). Once a group has `min_items` of them, each chat channel of its tier
gets one batch card listing them (oldest first, at most `max_items`) with per-item selection.
The items keep their own cards: the batch card is an extra way in, not a replacement, so
time-to-escalate is untouched and every vote still lands on each item separately.

`BatchPlanner.plan` runs periodically on every replica. It opens a card for a group that
qualifies and has none, rewrites an open card whose members changed, and closes one whose
group has no eligible item left. Every write is conditional (a partial unique index for new
cards, a version for rewrites) and carries its outbox row in the same transaction, so two
replicas planning at once post one card per group, and a restart loses no post.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import defaultdict

from bot.core.domain import (
    QUEUE_KIND,
    ApprovalRequest,
    BatchCard,
    BatchStatus,
    OutboxKind,
    OutboxMessage,
    batch_blocker,
    new_id,
)
from bot.engine.machine import Engine

log = logging.getLogger("signoff.batches")

# The web inbox groups on the page itself; only chat channels get posted batch cards.
BATCH_CHANNELS = frozenset({"slack", "teams"})
_SCAN_LIMIT = 5000

Group = tuple[str, str]


def batch_groups(requests: list[ApprovalRequest]) -> dict[Group, list[ApprovalRequest]]:
    """Batch-eligible items by (tier, action.kind), oldest first within each group."""
    groups: dict[Group, list[ApprovalRequest]] = defaultdict(list)
    for request in requests:
        # An action kind spelled like the queue cards' marker would share their group.
        if (
            request.tier is not None
            and request.action.kind != QUEUE_KIND
            and batch_blocker(request) is None
        ):
            groups[(request.tier, request.action.kind)].append(request)
    for items in groups.values():
        items.sort(key=lambda r: (r.created_at, r.id))
    return dict(groups)


class BatchPlanner:
    """Keeps the open batch cards in line with the queue (see the module docstring)."""

    def __init__(self, engine: Engine, *, min_items: int, max_items: int) -> None:
        self.engine = engine
        self.repo = engine.repo
        self.clock = engine.clock
        self.min_items = min_items
        self.max_items = max_items

    @property
    def enabled(self) -> bool:
        return self.min_items >= 2

    async def plan(self) -> int:
        """Open, rewrite or close batch cards as the queue requires; returns how many changed.

        Raises StorageError when the database cannot be reached.
        """
        if not self.enabled:
            return 0
        groups = batch_groups(list(await self.repo.list_awaiting(limit=_SCAN_LIMIT)))
        stale = {
            card.group: card
            for card in await self.repo.open_batches()
            if card.kind != QUEUE_KIND  # bot.engine.queue_cards keeps those
        }
        changed = 0
        for (tier, kind), items in groups.items():
            members = tuple(r.id for r in items[: self.max_items])
            for channel, target in self.engine.targets(tier):
                if channel not in BATCH_CHANNELS:
                    continue
                card = stale.pop((tier, kind, channel, target), None)
                if card is None:
                    if len(items) >= self.min_items:
                        changed += await self._open(tier, kind, channel, target, members, items)
                elif card.members != members or card.total != len(items):
                    # Below the threshold now, but not empty: the card stays until all its
                    # items are decided, so reviewers who started on it can finish.
                    changed += await self._rewrite(card, members, len(items), BatchStatus.OPEN)
        for card in stale.values():
            changed += await self._rewrite(card, (), 0, BatchStatus.CLOSED)
        return changed

    async def _open(
        self,
        tier: str,
        kind: str,
        channel: str,
        target: str,
        members: tuple[str, ...],
        items: list[ApprovalRequest],
    ) -> int:
        now = self.clock.now()
        card = BatchCard(
            id=new_id("bat", now),
            tier=tier,
            kind=kind,
            channel=channel,
            target=target,
            members=members,
            total=len(items),
            status=BatchStatus.OPEN,
            created_at=now,
            updated_at=now,
        )
        if await self.repo.open_batch(card, (self._message(OutboxKind.POST_BATCH, card),)):
            log.info(
                "batch card %s: %d %s items at %s (%s)", card.id, len(items), kind, tier, channel
            )
            return 1
        return 0  # another replica opened this group's card first

    async def _rewrite(
        self, card: BatchCard, members: tuple[str, ...], total: int, status: BatchStatus
    ) -> int:
        # A closed card keeps its last members, so its final drawing still lists them.
        updated = dataclasses.replace(
            card,
            members=members if status is BatchStatus.OPEN else card.members,
            total=total,
            status=status,
            updated_at=self.clock.now(),
        )
        message = self._message(OutboxKind.UPDATE_BATCH, card)
        return int(await self.repo.update_batch(updated, card.version, (message,)))

    def _message(self, kind: OutboxKind, card: BatchCard) -> OutboxMessage:
        now = self.clock.now()
        return OutboxMessage(
            id=new_id("msg", now),
            kind=kind,
            request_id=None,
            # The destination counts against the outbox's cap per channel (bot.lanes).
            payload={"batch_id": card.id, "destination": f"{card.channel}:{card.target}"},
            created_at=now,
            next_attempt_at=now,
        )
