"""Reads: requests, idempotency records, due items, the outbox, cards, agents, the audit chain."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from sqlalchemy import (
    ColumnElement,
    func,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.orm import InstrumentedAttribute

from bot.core.audit_chain import AuditAnchor
from bot.core.domain import (
    AgentState,
    ApprovalRequest,
    AuditRecord,
    CardRef,
    IdempotencyRecord,
    OutboxKind,
    OutboxMessage,
    OutboxStatus,
    Page,
    TierMove,
    Verdict,
    Vote,
)
from storage._sql_base import SqlBase
from storage._sql_rows import (
    _append_audit,
    _audit_record,
    _children,
    _count,
    _outbox,
    _request,
)
from storage._sql_setup import (
    _AUDIT_HEAD_ID,
    _PENDING,
)
from storage._statements import (
    GET_REQUEST,
)
from storage.models import (
    AgentStateRow,
    ApiKeyRow,
    AuditEventRow,
    AuditHeadRow,
    CardRow,
    IdempotencyRow,
    OutboxRow,
    RequestRow,
)


class SqlReads(SqlBase):
    """Everything read for the engine, the workers and the audit checks."""

    async def get(self, request_id: str) -> ApprovalRequest | None:
        """The whole aggregate (request, votes and tier moves in order) with its version."""
        async with self._read() as conn:
            rows = (await conn.execute(GET_REQUEST, {"request_id": request_id})).mappings().all()
        if not rows:
            return None
        votes: list[Vote] = []
        moves: list[TierMove] = []
        for row in rows:
            if row["child_kind"] == "vote":
                votes.append(
                    Vote(
                        reviewer=row["child_1"],
                        name=row["child_2"],
                        verdict=Verdict(row["child_3"]),
                        rationale=row["child_4"],
                        at=row["child_at"],
                        channel=row["child_5"],
                        action_sha256=row["child_6"],
                        person=row["child_7"] or "",
                        response=row["child_8"],
                    )
                )
            elif row["child_kind"] == "move":
                moves.append(
                    TierMove(row["child_1"], row["child_2"], row["child_at"], row["child_3"])
                )
        return _request(rows[0], votes, moves)

    async def get_many(self, request_ids: Sequence[str]) -> Sequence[ApprovalRequest]:
        """The requests of `request_ids` that exist, in that order, read in one snapshot."""
        if not request_ids:
            return []
        query = select(RequestRow.__table__).where(RequestRow.id.in_(list(request_ids)))
        async with self._read(snapshot=True) as conn:
            rows = {r["id"]: r for r in (await conn.execute(query)).mappings().all()}
            votes, moves = await _children(conn, list(rows))
        return [
            _request(rows[i], votes.get(i, ()), moves.get(i, ())) for i in request_ids if i in rows
        ]

    async def list_requests(
        self,
        *,
        agent_id: str | None = None,
        status: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
        newest_first: bool = False,
    ) -> Page:
        """Requests ordered by id (creation order, or its reverse); `cursor` is the last id
        of the previous page."""
        limit = max(limit, 0)
        query = select(RequestRow.__table__)
        if agent_id is not None:
            query = query.where(RequestRow.agent_id == agent_id)
        if status is not None:
            query = query.where(RequestRow.status == status)
        if cursor is not None:
            query = query.where(RequestRow.id < cursor if newest_first else RequestRow.id > cursor)
        # One row past the page tells whether another page follows.
        order = RequestRow.id.desc() if newest_first else RequestRow.id
        query = query.order_by(order).limit(limit + 1)
        async with self._read(snapshot=True) as conn:
            rows = (await conn.execute(query)).mappings().all()
            page = rows[:limit]
            votes, moves = await _children(conn, [r["id"] for r in page])
        items = tuple(_request(r, votes.get(r["id"], ()), moves.get(r["id"], ())) for r in page)
        more = len(rows) > limit
        return Page(items, items[-1].id if more and items else None)

    async def list_awaiting(self, limit: int = 500) -> Sequence[ApprovalRequest]:
        """Pending requests and open reviews, earliest deadline first (no deadline last)."""
        query = (
            select(RequestRow.__table__)
            .where(or_(RequestRow.status == "pending", RequestRow.review_status == "open"))
            .order_by(RequestRow.deadline_at.is_(None), RequestRow.deadline_at, RequestRow.id)
            .limit(max(limit, 0))
        )
        async with self._read(snapshot=True) as conn:
            rows = (await conn.execute(query)).mappings().all()
            votes, moves = await _children(conn, [r["id"] for r in rows])
        return [_request(r, votes.get(r["id"], ()), moves.get(r["id"], ())) for r in rows]

    async def find_idempotency(self, agent_id: str, key: str) -> IdempotencyRecord | None:
        async with self._read() as conn:
            found = await conn.execute(
                select(IdempotencyRow.__table__).where(
                    IdempotencyRow.agent_id == agent_id, IdempotencyRow.key == key
                )
            )
            row = found.mappings().one_or_none()
        if row is None:
            return None
        return IdempotencyRecord(
            agent_id=row["agent_id"],
            key=row["key"],
            body_sha256=row["body_sha256"],
            request_id=row["request_id"],
            response=row["response"],
            created_at=row["created_at"],
        )

    async def due_for_sla(self, now: datetime, limit: int) -> Sequence[str]:
        """Ids of pending requests whose tier deadline has passed, earliest deadline first.

        Served by the partial index on `deadline_at WHERE status = 'pending'`.
        """
        return await self._due(RequestRow.deadline_at, now, limit)

    async def due_for_reminder(self, now: datetime, limit: int) -> Sequence[str]:
        """Ids of pending requests whose reminder time has passed, earliest first."""
        return await self._due(RequestRow.remind_at, now, limit)

    async def _due(
        self, column: InstrumentedAttribute[datetime | None], now: datetime, limit: int
    ) -> Sequence[str]:
        async with self._read() as conn:
            found = await conn.execute(
                select(RequestRow.id)
                .where(self._pending_hint(), column <= now)
                .order_by(column, RequestRow.id)
                .limit(max(limit, 0))
            )
            return list(found.scalars())

    def _pending_hint(self) -> ColumnElement[bool]:
        pending = RequestRow.status == _PENDING
        if self._postgres:
            return pending
        # Without ANALYZE statistics SQLite rates `status = 'pending'` on ix_requests_status_id
        # as more selective than the partial index's time range, and would read and sort every
        # pending row. Declaring the equality barely selective steers it to the partial index,
        # whose predicate it still matches through likelihood().
        return func.likelihood(pending, literal_column("0.9375"))

    async def get_outbox(self, message_id: str) -> OutboxMessage | None:
        async with self._read() as conn:
            found = await conn.execute(
                select(OutboxRow.__table__).where(OutboxRow.id == message_id)
            )
            row = found.mappings().one_or_none()
        return None if row is None else _outbox(row)

    async def list_outbox(
        self,
        *,
        kind: OutboxKind | None = None,
        status: OutboxStatus | None = None,
        agent_id: str | None = None,
        limit: int = 100,
    ) -> Sequence[OutboxMessage]:
        """Messages ordered by id; `agent_id` matches the payload's `agent_id`."""
        query = select(OutboxRow.__table__)
        if kind is not None:
            query = query.where(OutboxRow.kind == kind.value)
        if status is not None:
            query = query.where(OutboxRow.status == status.value)
        if agent_id is not None:
            query = query.where(OutboxRow.agent_id == agent_id)
        async with self._read() as conn:
            found = await conn.execute(query.order_by(OutboxRow.id).limit(max(limit, 0)))
            return [_outbox(row) for row in found.mappings()]

    async def cards(self, request_id: str) -> Sequence[CardRef]:
        """Every posted copy of the request's card, in the order they were posted."""
        async with self._read() as conn:
            found = await conn.execute(
                select(CardRow.__table__)
                .where(CardRow.request_id == request_id)
                .order_by(CardRow.id)
            )
            return [
                CardRef(
                    request_id=row["request_id"],
                    channel=row["channel"],
                    tier=row["tier"],
                    ref=row["ref"],
                    posted_at=row["posted_at"],
                )
                for row in found.mappings()
            ]

    async def agent_state(self, agent_id: str) -> AgentState | None:
        async with self._read() as conn:
            found = await conn.execute(
                select(AgentStateRow.__table__).where(AgentStateRow.agent_id == agent_id)
            )
            row = found.mappings().one_or_none()
        if row is None:
            return None
        return AgentState(row["agent_id"], row["stopped"], row["reason"], row["actor"], row["at"])

    async def agent_for_key(self, key_sha256: str) -> str | None:
        """The agent a stored (hashed) API key belongs to, unless the key was revoked."""
        async with self._read() as conn:
            found = await conn.execute(
                select(ApiKeyRow.agent_id).where(
                    ApiKeyRow.key_sha256 == key_sha256, ApiKeyRow.revoked_at.is_(None)
                )
            )
            return found.scalar_one_or_none()

    async def audit_records(
        self,
        *,
        since: datetime | None = None,
        request_id: str | None = None,
        risk: str | None = None,
        actor: str | None = None,
        last: int | None = None,
    ) -> Sequence[AuditRecord]:
        """Audit rows in chain order, filtered; `last` keeps the last N matching rows."""
        query = select(AuditEventRow.__table__)
        if since is not None:
            query = query.where(AuditEventRow.at >= since)
        if request_id is not None:
            query = query.where(AuditEventRow.request_id == request_id)
        if risk is not None:
            query = query.where(AuditEventRow.risk == risk)
        if actor is not None:
            query = query.where(AuditEventRow.actor == actor)
        if last:
            query = query.order_by(AuditEventRow.seq.desc()).limit(last)
        else:
            query = query.order_by(AuditEventRow.seq)
        async with self._read() as conn:
            rows = (await conn.execute(query)).mappings().all()
        records = [_audit_record(row) for row in rows]
        return records[::-1] if last else records

    async def audit_head(self) -> tuple[int, str] | None:
        """The chain's tail as the last append recorded it; None before the first event."""
        async with self._read() as conn:
            found = await conn.execute(
                select(AuditHeadRow.seq, AuditHeadRow.hash).where(AuditHeadRow.id == _AUDIT_HEAD_ID)
            )
            head = found.one_or_none()
        if head is None or int(head.seq) == 0:
            return None
        return int(head.seq), str(head.hash)

    async def audit_anchor(self) -> AuditAnchor | None:
        """The `audit_head` row with the key it was linked with; None when the row is gone."""
        async with self._read() as conn:
            found = await conn.execute(
                select(AuditHeadRow.seq, AuditHeadRow.hash, AuditHeadRow.key_id).where(
                    AuditHeadRow.id == _AUDIT_HEAD_ID
                )
            )
            head = found.one_or_none()
        return None if head is None else AuditAnchor(int(head.seq), str(head.hash), head.key_id)

    async def ensure_audit_key(self, now: datetime) -> bool:
        """Record the move to `audit_key` now (an `audit_keyed` event) unless the chain's last
        link already uses it; True when an event was written."""
        if self.audit_key is None:
            return False
        async with self._write() as conn:
            return await _append_audit(conn, (), self.audit_key, switch_at=now)

    async def claim_audit_checkpoint(self, slot: int) -> bool:
        """Take checkpoint interval `slot` for this replica; False when another took it."""
        async with self._write() as conn:
            taken = await conn.execute(
                update(AuditHeadRow)
                .where(
                    AuditHeadRow.id == _AUDIT_HEAD_ID,
                    or_(
                        AuditHeadRow.checkpoint_slot.is_(None), AuditHeadRow.checkpoint_slot != slot
                    ),
                )
                .values(checkpoint_slot=slot)
                .returning(AuditHeadRow.id)
            )
            return taken.one_or_none() is not None

    async def pending_by_tier(self) -> Mapping[str, int]:
        """How many pending requests sit at each tier."""
        async with self._read() as conn:
            found = await conn.execute(
                select(RequestRow.tier, func.count())
                .where(RequestRow.status == _PENDING, RequestRow.tier.is_not(None))
                .group_by(RequestRow.tier)
            )
            return {str(tier): int(count) for tier, count in found}

    async def count_outbox(self, kind: OutboxKind, status: OutboxStatus) -> int:
        async with self._read() as conn:
            return await _count(
                conn, OutboxRow.kind == kind.value, OutboxRow.status == status.value
            )
