"""Time: SLA sweeps (escalate or end), reminders, all in batches."""

from __future__ import annotations

import dataclasses
import functools
import random
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime

from bot.core.domain import (
    POLICY_ACTOR,
    ApprovalRequest,
    Change,
    OutboxKind,
    OutboxMessage,
    Status,
    isoformat,
    new_id,
)
from bot.engine import transitions
from bot.engine._core import (
    SWEEP_BATCH,
    EngineCore,
    _Planned,
)


class TimeOps(EngineCore):
    """What the scheduler's clock drives: escalations, expiries and reminders."""

    async def sweep(self, limit: int = 200) -> int:
        """Move overdue pending items up a tier, or end them per on_timeout. Returns how many.

        Works in batches (`SWEEP_BATCH`): one read for the batch's requests and one
        transaction for all their tier moves, outbox rows and audit events; a change the
        batch refused (another writer got there first) is decided again alone.
        """
        await self._reject_after_stops()
        now = self.clock.now()
        due = list(await self.repo.due_for_sla(now, limit))
        # Every replica sweeps and finds the same overdue ids. Taken in each replica's own
        # order they spread over the batch instead of colliding on every row (a collision
        # is harmless, the version check refuses the second writer, but it is wasted work).
        random.shuffle(due)
        return await self._in_batches(due, self._plan_escalation, self._escalate_one)

    async def _in_batches(
        self,
        ids: Sequence[str],
        plan: Callable[[ApprovalRequest, datetime], _Planned | None],
        alone: Callable[[str], Awaitable[bool]],
    ) -> int:
        """Plan a change for each request of `ids`, write each batch's in one transaction,
        and redo alone (read again, decide again) those the batch refused."""
        done = 0
        for start in range(0, len(ids), SWEEP_BATCH):
            requests = await self.repo.get_many(ids[start : start + SWEEP_BATCH])
            now = self.clock.now()
            planned = [p for p in (plan(r, now) for r in requests) if p is not None]
            outcomes = await self.repo.apply_many([p.change for p in planned])
            for item, outcome in zip(planned, outcomes, strict=True):
                if outcome is None:
                    item.committed()
                    done += 1
                elif await self._retrying(functools.partial(alone, item.request_id)):
                    done += 1
        return done

    async def _escalate_one(self, request_id: str) -> bool:
        request = await self.repo.get(request_id)
        if request is None:
            return False
        planned = self._plan_escalation(request, self.clock.now())
        if planned is None:
            return False
        await self.repo.apply(planned.change)
        planned.committed()
        return True

    def _plan_escalation(self, request: ApprovalRequest, now: datetime) -> _Planned | None:
        """The change an overdue request's SLA calls for (next tier, on_timeout, or a
        restarted window after downtime); None when it is not overdue (any more)."""
        if not transitions.overdue(request, now):
            return None
        assert request.tier is not None and request.deadline_at is not None
        next_tier = self.policy.next_tier(request.tier)
        if transitions.missed_while_down(request, next_tier is None, self.started_at):
            # Its reviewers get it again in full before on_timeout may decide.
            return self._restart_window(request, now)
        if next_tier is not None:
            updated, move = transitions.escalate(request, self.policy.tier(next_tier), now)
            posts, cards, posted = self._card_posts(updated, next_tier, now)
            outbox = [self._card_update(request, now), *posts]
            events = [
                self._event(
                    "escalated",
                    updated,
                    now,
                    reason="sla",
                    from_tier=request.tier,
                    to_tier=next_tier,
                ),
                *posted,
            ]
            change = Change(
                request=updated,
                expected_version=request.version,
                new_moves=(move,),
                outbox=tuple(outbox),
                audit=tuple(events),
                cards=tuple(cards),
            )

            def escalated() -> None:
                self.metrics.escalations.labels(tier=next_tier).inc()
                self._committed(request.id)

            return _Planned(request.id, change, escalated)
        action = self.policy.timeout_action(request.risk)
        updated, vote = transitions.time_out(request, action, now)
        outbox, events = self._resolution(updated, now, actor=POLICY_ACTOR, channel=POLICY_ACTOR)
        events.insert(
            0,
            self._event(
                "expired", updated, now, actor=POLICY_ACTOR, reason=f"on_timeout:{action.value}"
            ),
        )
        change = Change(
            request=updated,
            expected_version=request.version,
            new_votes=(vote,) if vote is not None else (),
            outbox=tuple(outbox),
            audit=tuple(events),
        )

        def expired() -> None:
            self._observe_decision(updated)
            self._committed(request.id)

        return _Planned(request.id, change, expired)

    def _restart_window(self, request: ApprovalRequest, now: datetime) -> _Planned:
        assert request.tier is not None and request.deadline_at is not None
        updated = transitions.restart_window(request, self.policy.tier(request.tier), now)
        event = self._event(
            "sla_restarted",
            updated,
            now,
            reason="downtime",
            tier=request.tier,
            missed_deadline=isoformat(request.deadline_at),
        )
        change = Change(request=updated, expected_version=request.version, audit=(event,))
        return _Planned(request.id, change, functools.partial(self._committed, request.id))

    async def remind(self, limit: int = 200) -> int:
        """Queue a reminder for pending items whose tier's remind_after has passed, in
        batches like `sweep`."""
        due = list(await self.repo.due_for_reminder(self.clock.now(), limit))
        return await self._in_batches(due, self._plan_reminder, self._remind_one)

    async def _remind_one(self, request_id: str) -> bool:
        request = await self.repo.get(request_id)
        if request is None:
            return False
        planned = self._plan_reminder(request, self.clock.now())
        if planned is None:
            return False
        await self.repo.apply(planned.change)
        planned.committed()
        return True

    def _plan_reminder(self, request: ApprovalRequest, now: datetime) -> _Planned | None:
        if (
            request.status is not Status.PENDING
            or request.remind_at is None
            or request.remind_at > now
        ):
            return None
        updated = dataclasses.replace(request, remind_at=None, updated_at=now)
        message = OutboxMessage(
            id=new_id("msg", now),
            kind=OutboxKind.REMIND,
            request_id=request.id,
            payload={"tier": request.tier, **self._destination(request.tier)},
            created_at=now,
            next_attempt_at=now,
        )
        event = self._event("reminded", updated, now, tier=request.tier)
        change = Change(
            request=updated,
            expected_version=request.version,
            outbox=(message,),
            audit=(event,),
        )
        return _Planned(request.id, change, functools.partial(self._committed, request.id))
