"""An in-memory repository: the reference semantics the SQL repository is tested against."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

from bot.core.audit_chain import AuditAnchor, AuditKey, UnkeyedAppend, link_events
from bot.core.domain import (
    GENESIS_HASH,
    AgentState,
    Alert,
    ApprovalRequest,
    AuditEvent,
    AuditRecord,
    BatchCard,
    BatchStatus,
    CardRef,
    Change,
    IdempotencyRecord,
    LoginFailures,
    OutboxKind,
    OutboxMessage,
    OutboxResult,
    OutboxStatus,
    Page,
    Status,
    WebSession,
)
from bot.core.errors import IdempotencyRace, StandingExhausted, StorageError, VersionConflict
from bot.core.lanes import destination
from bot.core.learning import PredictionModel, StandingApproval
from storage._memory_sessions import MemorySessions


class _Outbox(dict[str, OutboxMessage]):
    """The outbox by id, with the ids of pending messages kept aside: a long simulation
    holds thousands of delivered messages that a claim must not walk every time."""

    def __init__(self) -> None:
        super().__init__()
        self.pending: dict[str, None] = {}

    def __setitem__(self, key: str, message: OutboxMessage) -> None:
        super().__setitem__(key, message)
        if message.status is OutboxStatus.PENDING:
            self.pending[key] = None
        else:
            self.pending.pop(key, None)


class InMemoryRepository(MemorySessions):
    """Implements `bot.core.ports.Repository` in process memory; one lock makes writes atomic."""

    def __init__(self, *, audit_key: AuditKey | None = None) -> None:
        self.audit_key = audit_key
        self._audit_key_id: str | None = None
        self._checkpoint_slot: int | None = None
        self._lock = asyncio.Lock()
        self._requests: dict[str, ApprovalRequest] = {}
        self._idem: dict[tuple[str, str], IdempotencyRecord] = {}
        self._outbox = _Outbox()
        self._cards: dict[str, list[CardRef]] = {}
        self._agents: dict[str, AgentState] = {}
        self._keys: dict[str, str] = {}
        self._audit: list[AuditRecord] = []
        self._alerts: dict[tuple[str, str], Alert] = {}
        self._logins: dict[tuple[str, str], LoginFailures] = {}
        self._sessions: dict[str, WebSession] = {}
        self._login_tokens: dict[str, tuple[str, datetime]] = {}
        self._batches: dict[str, BatchCard] = {}
        self._grants: dict[str, StandingApproval] = {}
        self._models: dict[int, PredictionModel] = {}

    async def apply_many(self, changes: Sequence[Change]) -> Sequence[Exception | None]:
        outcomes: list[Exception | None] = []
        for change in changes:
            try:
                await self.apply(change)
            except (VersionConflict, IdempotencyRace, StandingExhausted) as exc:
                outcomes.append(exc)
            else:
                outcomes.append(None)
        return outcomes

    async def apply(self, change: Change) -> None:
        async with self._lock:
            self._guard_audit(change.audit)
            if change.request is not None:
                stored = self._requests.get(change.request.id)
                if change.expected_version is None:
                    if stored is not None:
                        raise VersionConflict(f"request {change.request.id} exists")
                elif stored is None or stored.version != change.expected_version:
                    raise VersionConflict(f"request {change.request.id} changed meanwhile")
            use = change.standing_use
            if use is not None:
                grant = self._grants.get(use.grant_id)
                if grant is None or not grant.active_at(use.at):
                    raise StandingExhausted(f"standing approval {use.grant_id} has no use left")
            if change.idempotency is not None:
                key = (change.idempotency.agent_id, change.idempotency.key)
                if key in self._idem:
                    raise IdempotencyRace(f"idempotency key {key[1]!r} already used")
                self._idem[key] = change.idempotency
            if change.request is not None:
                new_version = (change.expected_version or 0) + 1
                self._requests[change.request.id] = dataclasses.replace(
                    change.request, version=new_version
                )
            for message in change.outbox:
                self._outbox[message.id] = message
            for card in change.cards:
                self._cards.setdefault(card.request_id, []).append(card)
            if change.agent_state is not None:
                self._agents[change.agent_state.agent_id] = change.agent_state
            if use is not None:
                grant = self._grants[use.grant_id]
                self._grants[grant.id] = dataclasses.replace(grant, uses=grant.uses + 1)
            self._append_audit(change.audit)

    def _anchor(self) -> AuditAnchor:
        if not self._audit:
            return AuditAnchor(0, GENESIS_HASH, None)
        return AuditAnchor(self._audit[-1].seq, self._audit[-1].hash, self._audit_key_id)

    def _guard_audit(self, events: Sequence[AuditEvent]) -> None:
        """Refuse, before anything changes, a write that could not be linked to the chain."""
        if events and self.audit_key is None and self._audit_key_id is not None:
            raise StorageError(
                f"the audit chain is keyed (key {self._audit_key_id}); "
                "set SIGNOFF_AUDIT_KEY to write to it"
            )

    def _append_audit(
        self, events: Sequence[AuditEvent], switch_at: datetime | None = None
    ) -> bool:
        if not events and switch_at is None:
            return False
        try:
            records, moved = link_events(
                self._anchor(), events, self.audit_key, switch_at=switch_at
            )
        except UnkeyedAppend as exc:
            raise StorageError(str(exc)) from exc
        self._audit += records
        self._audit_key_id = moved.key_id
        return bool(records)

    async def audit_anchor(self) -> AuditAnchor | None:
        return self._anchor()

    async def ensure_audit_key(self, now: datetime) -> bool:
        if self.audit_key is None:
            return False
        async with self._lock:
            return self._append_audit((), switch_at=now)

    async def claim_audit_checkpoint(self, slot: int) -> bool:
        async with self._lock:
            if self._checkpoint_slot == slot:
                return False
            self._checkpoint_slot = slot
            return True

    async def get(self, request_id: str) -> ApprovalRequest | None:
        return self._requests.get(request_id)

    async def get_many(self, request_ids: Sequence[str]) -> Sequence[ApprovalRequest]:
        return [self._requests[i] for i in request_ids if i in self._requests]

    async def list_requests(
        self,
        *,
        agent_id: str | None = None,
        status: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
        newest_first: bool = False,
    ) -> Page:
        rows = sorted(self._requests.values(), key=lambda r: r.id, reverse=newest_first)
        rows = [
            r
            for r in rows
            if (agent_id is None or r.agent_id == agent_id)
            and (status is None or r.status.value == status)
            and (cursor is None or (r.id < cursor if newest_first else r.id > cursor))
        ]
        page = rows[:limit]
        more = len(rows) > limit
        return Page(tuple(page), page[-1].id if more and page else None)

    async def list_awaiting(self, limit: int = 500) -> Sequence[ApprovalRequest]:
        far = datetime.max.replace(tzinfo=UTC)
        rows = [r for r in self._requests.values() if r.awaiting_verdict]
        rows.sort(key=lambda r: (r.deadline_at or far, r.id))
        return rows[:limit]

    async def find_idempotency(self, agent_id: str, key: str) -> IdempotencyRecord | None:
        return self._idem.get((agent_id, key))

    async def due_for_sla(self, now: datetime, limit: int) -> Sequence[str]:
        due = [
            r
            for r in self._requests.values()
            if r.status is Status.PENDING and r.deadline_at is not None and r.deadline_at <= now
        ]
        return [r.id for r in sorted(due, key=lambda r: (r.deadline_at or now, r.id))[:limit]]

    async def due_for_reminder(self, now: datetime, limit: int) -> Sequence[str]:
        due = [
            r
            for r in self._requests.values()
            if r.status is Status.PENDING and r.remind_at is not None and r.remind_at <= now
        ]
        return [r.id for r in sorted(due, key=lambda r: (r.remind_at or now, r.id))[:limit]]

    async def claim_outbox(
        self,
        owner: str,
        now: datetime,
        lease: timedelta,
        limit: int,
        *,
        kinds: Sequence[OutboxKind] | None = None,
        busy: Sequence[str] = (),
    ) -> Sequence[OutboxMessage]:
        wanted = set(kinds if kinds is not None else OutboxKind)
        skipped = set(busy)
        async with self._lock:
            due = sorted(
                (
                    m
                    for m in map(self._outbox.__getitem__, self._outbox.pending)
                    if m.next_attempt_at <= now
                    and (m.lease_expires_at is None or m.lease_expires_at <= now)
                    and m.lease_owner != owner
                    and m.kind in wanted
                    and destination(m.kind, m.payload, m.request_id) not in skipped
                ),
                key=lambda m: (m.next_attempt_at, m.id),
            )[:limit]
            claimed = []
            for m in due:
                leased = dataclasses.replace(m, lease_owner=owner, lease_expires_at=now + lease)
                self._outbox[m.id] = leased
                claimed.append(leased)
            return claimed

    async def finish_outbox(self, message_id: str, owner: str, result: OutboxResult) -> bool:
        async with self._lock:
            message = self._outbox.get(message_id)
            if message is None or message.lease_owner != owner:
                return False
            self._guard_audit(result.audit)
            self._outbox[message_id] = dataclasses.replace(
                message,
                status=result.status,
                attempts=message.attempts + int(result.counted),
                next_attempt_at=result.next_attempt_at or message.next_attempt_at,
                last_error=result.error,
                lease_owner=None,
                lease_expires_at=None,
            )
            if result.card is not None:
                self._cards.setdefault(result.card.request_id, []).append(result.card)
            if result.batch_ref is not None:
                batch_id, ref = result.batch_ref
                stored = self._batches.get(batch_id)
                if stored is not None:
                    self._batches[batch_id] = dataclasses.replace(stored, ref=dict(ref))
            self._append_audit(result.audit)
            return True

    async def get_outbox(self, message_id: str) -> OutboxMessage | None:
        return self._outbox.get(message_id)

    async def list_outbox(
        self,
        *,
        kind: OutboxKind | None = None,
        status: OutboxStatus | None = None,
        agent_id: str | None = None,
        limit: int = 100,
    ) -> Sequence[OutboxMessage]:
        rows = [
            m
            for m in sorted(self._outbox.values(), key=lambda m: m.id)
            if (kind is None or m.kind is kind)
            and (status is None or m.status is status)
            and (agent_id is None or m.payload.get("agent_id") == agent_id)
        ]
        return rows[:limit]

    async def release_outbox(self, message_ids: Sequence[str], owner: str) -> int:
        released = 0
        async with self._lock:
            for message_id in message_ids:
                message = self._outbox.get(message_id)
                if (
                    message is None
                    or message.lease_owner != owner
                    or message.status is not OutboxStatus.PENDING
                ):
                    continue
                self._outbox[message_id] = dataclasses.replace(
                    message, lease_owner=None, lease_expires_at=None
                )
                released += 1
        return released

    async def renew_outbox(
        self, message_ids: Sequence[str], owner: str, expires_at: datetime
    ) -> Sequence[str]:
        renewed: list[str] = []
        async with self._lock:
            for message_id in message_ids:
                message = self._outbox.get(message_id)
                if (
                    message is None
                    or message.lease_owner != owner
                    or message.status is not OutboxStatus.PENDING
                ):
                    continue
                self._outbox[message_id] = dataclasses.replace(message, lease_expires_at=expires_at)
                renewed.append(message_id)
        return renewed

    async def requeue_outbox(
        self, message_id: str, now: datetime, audit: AuditEvent
    ) -> OutboxMessage | None:
        async with self._lock:
            message = self._outbox.get(message_id)
            if message is None or message.status is not OutboxStatus.DEAD:
                return None
            self._guard_audit([audit])
            again = dataclasses.replace(
                message,
                status=OutboxStatus.PENDING,
                attempts=0,
                next_attempt_at=now,
                lease_owner=None,
                lease_expires_at=None,
            )
            self._outbox[message_id] = again
            self._append_audit([audit])
            return again

    async def cards(self, request_id: str) -> Sequence[CardRef]:
        return list(self._cards.get(request_id, []))

    async def open_batch(self, card: BatchCard, outbox: Sequence[OutboxMessage] = ()) -> bool:
        async with self._lock:
            if any(
                b.status is BatchStatus.OPEN and b.group == card.group
                for b in self._batches.values()
            ):
                return False
            self._batches[card.id] = dataclasses.replace(card, version=1)
            for message in outbox:
                self._outbox[message.id] = message
            return True

    async def update_batch(
        self, card: BatchCard, expected_version: int, outbox: Sequence[OutboxMessage] = ()
    ) -> bool:
        async with self._lock:
            stored = self._batches.get(card.id)
            if (
                stored is None
                or stored.version != expected_version
                or stored.status is not BatchStatus.OPEN
            ):
                return False
            self._batches[card.id] = dataclasses.replace(
                stored,
                members=card.members,
                total=card.total,
                status=card.status,
                updated_at=card.updated_at,
                version=expected_version + 1,
            )
            for message in outbox:
                self._outbox[message.id] = message
            return True

    async def batch(self, batch_id: str) -> BatchCard | None:
        return self._batches.get(batch_id)

    async def open_batches(self) -> Sequence[BatchCard]:
        found = [b for b in self._batches.values() if b.status is BatchStatus.OPEN]
        return sorted(found, key=lambda b: (b.created_at, b.id))

    async def agent_state(self, agent_id: str) -> AgentState | None:
        return self._agents.get(agent_id)

    async def agent_for_key(self, key_sha256: str) -> str | None:
        return self._keys.get(key_sha256)

    async def set_agent_key(self, agent_id: str, key_sha256: str, now: datetime) -> None:
        async with self._lock:
            self._keys = {k: a for k, a in self._keys.items() if a != agent_id}
            self._keys[key_sha256] = agent_id

    async def audit_records(
        self,
        *,
        since: datetime | None = None,
        request_id: str | None = None,
        risk: str | None = None,
        actor: str | None = None,
        last: int | None = None,
    ) -> Sequence[AuditRecord]:
        rows = [
            r
            for r in self._audit
            if (since is None or r.event.at >= since)
            and (request_id is None or r.event.request_id == request_id)
            and (risk is None or r.event.risk == risk)
            and (actor is None or r.event.actor == actor)
        ]
        return rows[-last:] if last else rows

    async def audit_head(self) -> tuple[int, str] | None:
        return (self._audit[-1].seq, self._audit[-1].hash) if self._audit else None

    async def pending_by_tier(self) -> Mapping[str, int]:
        counts: dict[str, int] = {}
        for r in self._requests.values():
            if r.status is Status.PENDING and r.tier is not None:
                counts[r.tier] = counts.get(r.tier, 0) + 1
        return counts

    async def flip_alert(self, alert: Alert, outbox: Sequence[OutboxMessage] = ()) -> bool:
        async with self._lock:
            key = (alert.code, alert.subject)
            stored = self._alerts.get(key)
            if (stored.active if stored else False) == alert.active:
                if stored is not None and stored.active:
                    self._alerts[key] = dataclasses.replace(
                        stored,
                        message=alert.message,
                        figures=alert.figures,
                        updated_at=alert.updated_at,
                    )
                return False
            if alert.active:
                self._alerts[key] = dataclasses.replace(alert, cleared_at=None)
            else:
                assert stored is not None
                self._alerts[key] = dataclasses.replace(
                    stored,
                    active=False,
                    message=alert.message,
                    figures=alert.figures,
                    updated_at=alert.updated_at,
                    cleared_at=alert.updated_at,
                )
            for message in outbox:
                self._outbox[message.id] = message
            return True

    async def alerts(self, *, active_only: bool = False) -> Sequence[Alert]:
        found = [a for a in self._alerts.values() if a.active or not active_only]
        return sorted(found, key=lambda a: (a.raised_at, a.code, a.subject), reverse=True)

    async def count_outbox(self, kind: OutboxKind, status: OutboxStatus) -> int:
        return sum(1 for m in self._outbox.values() if m.kind is kind and m.status is status)

    async def add_standing(self, grant: StandingApproval, audit: Sequence[AuditEvent]) -> None:
        async with self._lock:
            if grant.id in self._grants:
                raise StorageError(f"standing approval {grant.id} exists")
            self._grants[grant.id] = grant
            self._append_audit(audit)

    async def standing_approval(self, grant_id: str) -> StandingApproval | None:
        return self._grants.get(grant_id)

    async def standing_approvals(
        self,
        *,
        agent_id: str | None = None,
        kind: str | None = None,
        active_at: datetime | None = None,
    ) -> Sequence[StandingApproval]:
        found = [
            g
            for g in self._grants.values()
            if (agent_id is None or g.agent_id == agent_id)
            and (kind is None or g.kind == kind)
            and (active_at is None or g.active_at(active_at))
        ]
        return sorted(found, key=lambda g: (g.created_at, g.id))

    async def revoke_standing(
        self, grant_id: str, by: str, now: datetime, audit: AuditEvent
    ) -> StandingApproval | None:
        async with self._lock:
            grant = self._grants.get(grant_id)
            if grant is None or grant.revoked_at is not None:
                return None
            revoked = dataclasses.replace(grant, revoked_at=now, revoked_by=by)
            self._grants[grant_id] = revoked
            self._append_audit((audit,))
            return revoked

    async def add_model(self, model: PredictionModel, audit: AuditEvent) -> PredictionModel:
        async with self._lock:
            version = max(self._models, default=0) + 1
            stored = dataclasses.replace(model, version=version, active=False, activated_at=None)
            self._models[version] = stored
            self._append_audit(
                (dataclasses.replace(audit, data={**audit.data, "version": version}),)
            )
            return stored

    async def prediction_models(self) -> Sequence[PredictionModel]:
        return [self._models[v] for v in sorted(self._models, reverse=True)]

    async def activate_model(self, version: int | None, now: datetime, audit: AuditEvent) -> bool:
        async with self._lock:
            if version is not None and version not in self._models:
                return False
            for v, m in self._models.items():
                active = v == version
                self._models[v] = dataclasses.replace(
                    m, active=active, activated_at=now if active else None
                )
            self._append_audit((audit,))
            return True

    async def active_model(self) -> PredictionModel | None:
        return next((m for m in self._models.values() if m.active), None)

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        return None
