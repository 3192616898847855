"""Writes: changes (one transaction each, or many in one), outbox claims, batch cards, keys."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import exc as sa_exc
from sqlalchemy import (
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.core.domain import (
    AgentState,
    ApprovalRequest,
    AuditEvent,
    BatchCard,
    BatchStatus,
    Change,
    IdempotencyRecord,
    OutboxKind,
    OutboxMessage,
    OutboxResult,
    OutboxStatus,
)
from bot.core.errors import (
    IdempotencyRace,
    StandingExhausted,
    VersionConflict,
)
from storage import _learning
from storage._batch import BatchRefused
from storage._sql_base import SqlBase
from storage._sql_rows import (
    _append_audit,
    _batch,
    _batch_values,
    _card_values,
    _insert_ignoring_duplicates,
    _move_rows,
    _outbox,
    _outbox_values,
    _request_values,
    _upsert,
    _vote_rows,
)
from storage._statements import (
    CHILD_COUNTS,
    CLAIM_OUTBOX,
    INSERT_CARDS,
    INSERT_MOVES,
    INSERT_OUTBOX,
    INSERT_REQUESTS,
    INSERT_VOTES,
    UPDATE_REQUEST,
)
from storage.models import (
    AgentStateRow,
    ApiKeyRow,
    BatchCardRow,
    OutboxRow,
)


class SqlWrites(SqlBase):
    """Everything that writes requests, the outbox and the audit chain."""

    async def apply(self, change: Change) -> None:
        """Write a request change with its votes, moves, outbox rows and audit events atomically.

        The request's `votes` and `history` are stored as given: rows beyond those already
        stored are appended (both only ever grow), which covers `new_votes`/`new_moves`.
        Raises VersionConflict if the stored version differs from `change.expected_version`
        (or the request id exists on insert), IdempotencyRace if the idempotency key is taken.
        Changes applied concurrently may share one transaction (see `storage._batch`).
        """
        await self._batcher.apply(change)

    async def apply_many(self, changes: Sequence[Change]) -> Sequence[Exception | None]:
        """Write `changes` in one transaction (rows of one table in one statement, see
        `_write_changes`); if any is refused, each is written alone and its own outcome
        returned. A failed COMMIT is raised, not redone (it may have landed)."""
        if not changes:
            return []
        try:
            await self._apply_many(changes)
        except BatchRefused:
            outcomes: list[Exception | None] = []
            for change in changes:
                try:
                    await self._apply_one(change)
                except (VersionConflict, IdempotencyRace, StandingExhausted) as exc:
                    outcomes.append(exc)
                else:
                    outcomes.append(None)
            return outcomes
        return [None] * len(changes)

    async def _apply_one(self, change: Change) -> None:
        async with self._write() as conn:
            await self._write_changes(conn, (change,))

    async def _apply_many(self, changes: Sequence[Change]) -> None:
        written = False
        try:
            async with self._write() as conn:
                await self._write_changes(conn, changes)
                written = True
        except Exception as exc:
            if written:  # the COMMIT failed: it may have landed, so nothing is redone
                raise
            raise BatchRefused(str(exc)) from exc

    async def _write_changes(self, conn: AsyncConnection, changes: Sequence[Change]) -> None:
        """Write `changes` in order; rows of one table from several changes go in one
        statement (a new request's votes and moves, outbox rows, cards), and the audit
        events of all of them last, in the changes' order (see `_append_audit`)."""
        created = [
            c.request for c in changes if c.request is not None and c.expected_version is None
        ]
        if created:
            rows = [{**_request_values(r), "version": 1} for r in created]
            try:
                await conn.execute(INSERT_REQUESTS, rows)
            except sa_exc.IntegrityError as exc:
                if _duplicate_key(exc):
                    raise VersionConflict("a request with one of these ids exists") from exc
                raise
        stored = await self._update_requests(
            conn,
            [
                (c.request, c.expected_version)
                for c in changes
                if c.request is not None and c.expected_version is not None
            ],
        )
        votes: list[dict[str, Any]] = []
        moves: list[dict[str, Any]] = []
        outbox: list[dict[str, Any]] = []
        cards: list[dict[str, Any]] = []
        for change in changes:
            request = change.request
            if request is not None:
                stored_votes, stored_moves = stored.get(request.id, (0, 0))
                votes += _vote_rows(request, stored_votes)
                moves += _move_rows(request, stored_moves)
            if change.idempotency is not None:
                await self._insert_idempotency(conn, change.idempotency)
            if change.agent_state is not None:
                await self._upsert_agent_state(conn, change.agent_state)
            if change.standing_use is not None:
                await _learning.use_standing(conn, change.standing_use)
            outbox += (_outbox_values(m) for m in change.outbox)
            cards += (_card_values(c) for c in change.cards)
        for statement, rows in (
            (INSERT_VOTES, votes),
            (INSERT_MOVES, moves),
            (INSERT_OUTBOX, outbox),
            (INSERT_CARDS, cards),
        ):
            if rows:
                await conn.execute(statement, rows)
        await _append_audit(
            conn, [event for change in changes for event in change.audit], self.audit_key
        )

    async def _update_requests(
        self, conn: AsyncConnection, updates: Sequence[tuple[ApprovalRequest, int]]
    ) -> dict[str, tuple[int, int]]:
        """Version-checked UPDATEs; per request, how many votes and moves are stored already.

        Several go as one executemany (pipelined on PostgreSQL) and one count of children
        for all: a sweep batch of 100 escalations was 200 statements. Any that matched no row
        refuses the whole transaction, which the batcher then redoes change by change.
        """
        if len(updates) < 2:
            return {
                request.id: await self._update_request(conn, request, expected)
                for request, expected in updates
            }
        rows = []
        for request, expected in updates:
            values = _request_values(request)
            del values["id"]
            values.update(version=expected + 1, match_id=request.id, match_version=expected)
            rows.append(values)
        updated = await conn.execute(UPDATE_REQUEST, rows)
        if updated.rowcount != len(rows):
            raise VersionConflict("a request of this batch changed meanwhile")
        # The row locks the UPDATEs took keep these counts stable until commit.
        counted = await conn.execute(
            self._statements.child_counts_many, {"ids": [request.id for request, _ in updates]}
        )
        return {str(row[0]): (int(row[1]), int(row[2])) for row in counted}

    async def _update_request(
        self, conn: AsyncConnection, request: ApprovalRequest, expected: int
    ) -> tuple[int, int]:
        """Version-checked UPDATE; returns how many votes and moves are stored already."""
        values = _request_values(request)
        del values["id"]
        values.update(version=expected + 1, match_id=request.id, match_version=expected)
        updated = await conn.execute(UPDATE_REQUEST, values)
        if updated.rowcount != 1:
            raise VersionConflict(f"request {request.id} changed meanwhile")
        # The row lock taken by the UPDATE keeps these counts stable until commit.
        counts = (await conn.execute(CHILD_COUNTS, {"child_of": request.id})).one()
        return int(counts[0]), int(counts[1])

    async def _insert_idempotency(self, conn: AsyncConnection, record: IdempotencyRecord) -> None:
        inserted = await conn.execute(
            self._statements.insert_idempotency,
            {
                "agent_id": record.agent_id,
                "key": record.key,
                "body_sha256": record.body_sha256,
                "request_id": record.request_id,
                "response": dict(record.response),
                "created_at": record.created_at,
            },
        )
        if inserted.first() is None:
            raise IdempotencyRace(f"idempotency key {record.key!r} already used")

    async def _upsert_agent_state(self, conn: AsyncConnection, state: AgentState) -> None:
        await conn.execute(
            _upsert(
                conn,
                AgentStateRow,
                {
                    "agent_id": state.agent_id,
                    "stopped": state.stopped,
                    "reason": state.reason,
                    "actor": state.by,
                    "at": state.at,
                },
                key=("agent_id",),
            )
        )

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
        """Lease up to `limit` due messages to `owner` (expired leases of others count as due).

        Due means pending, `next_attempt_at <= now` and no lease or an expired one, oldest
        first. PostgreSQL skips rows another claimer holds locked; SQLite serialises claims.
        """
        expires = now + lease
        if limit <= 0:
            return []
        params = {
            "due_at": now,
            "claim_limit": limit,
            "owner": owner,
            "claimer": owner,
            "expires": expires,
            "kinds": [k.value for k in (kinds if kinds is not None else OutboxKind)],
            "busy": list(busy),
        }
        async with self._write() as conn:
            claimed = await conn.execute(CLAIM_OUTBOX, params)
            messages = [_outbox(row) for row in claimed.mappings()]
        # RETURNING comes in no particular order; the claim's order is the sending order.
        return sorted(messages, key=lambda m: (m.next_attempt_at, m.id))

    async def finish_outbox(self, message_id: str, owner: str, result: OutboxResult) -> bool:
        """Record an attempt's result; False if the lease was lost (another owner took it).

        The card (if any) and the audit events are written in the same transaction, and
        only when the lease was still `owner`'s.
        """
        values: dict[str, Any] = {
            "status": result.status.value,
            "attempts": OutboxRow.attempts + int(result.counted),
            "last_error": result.error,
            "lease_owner": None,
            "lease_expires_at": None,
        }
        if result.next_attempt_at is not None:
            values["next_attempt_at"] = result.next_attempt_at
        async with self._write() as conn:
            updated = await conn.execute(
                update(OutboxRow)
                .where(OutboxRow.id == message_id, OutboxRow.lease_owner == owner)
                .values(**values)
            )
            if updated.rowcount != 1:
                return False
            if result.card is not None:
                await conn.execute(INSERT_CARDS, [_card_values(result.card)])
            if result.batch_ref is not None:
                batch_id, ref = result.batch_ref
                # Only the ref: a planner may rewrite the members meanwhile (version check).
                await conn.execute(
                    update(BatchCardRow).where(BatchCardRow.id == batch_id).values(ref=dict(ref))
                )
            await _append_audit(conn, result.audit, self.audit_key)
        return True

    async def open_batch(self, card: BatchCard, outbox: Sequence[OutboxMessage] = ()) -> bool:
        """Insert an open batch card unless its group has one (partial unique index).

        ON CONFLICT DO NOTHING waits for a concurrent insert of the same group to commit and
        then inserts nothing, so the loser writes no outbox row either.
        """
        async with self._write() as conn:
            inserted = await conn.execute(
                _insert_ignoring_duplicates(conn, BatchCardRow, _batch_values(card, 1))
            )
            if inserted.first() is None:
                return False
            if outbox:
                await conn.execute(INSERT_OUTBOX, [_outbox_values(m) for m in outbox])
            return True

    async def update_batch(
        self, card: BatchCard, expected_version: int, outbox: Sequence[OutboxMessage] = ()
    ) -> bool:
        values = {
            "members": list(card.members),
            "total": card.total,
            "status": card.status.value,
            "updated_at": card.updated_at,
            "version": expected_version + 1,
        }
        async with self._write() as conn:
            updated = await conn.execute(
                update(BatchCardRow)
                .where(
                    BatchCardRow.id == card.id,
                    BatchCardRow.version == expected_version,
                    BatchCardRow.status == BatchStatus.OPEN.value,
                )
                .values(**values)
            )
            if updated.rowcount != 1:
                return False
            if outbox:
                await conn.execute(INSERT_OUTBOX, [_outbox_values(m) for m in outbox])
            return True

    async def batch(self, batch_id: str) -> BatchCard | None:
        async with self._read() as conn:
            found = await conn.execute(
                select(BatchCardRow.__table__).where(BatchCardRow.id == batch_id)
            )
            row = found.mappings().one_or_none()
        return None if row is None else _batch(row)

    async def open_batches(self) -> Sequence[BatchCard]:
        async with self._read() as conn:
            found = await conn.execute(
                select(BatchCardRow.__table__)
                .where(BatchCardRow.status == BatchStatus.OPEN.value)
                .order_by(BatchCardRow.created_at, BatchCardRow.id)
            )
            return [_batch(row) for row in found.mappings()]

    async def release_outbox(self, message_ids: Sequence[str], owner: str) -> int:
        if not message_ids:
            return 0
        async with self._write() as conn:
            released = await conn.execute(
                update(OutboxRow)
                .where(
                    OutboxRow.id.in_(list(message_ids)),
                    OutboxRow.lease_owner == owner,
                    OutboxRow.status == OutboxStatus.PENDING.value,
                )
                .values(lease_owner=None, lease_expires_at=None)
                .returning(OutboxRow.id)
            )
            return len(released.all())

    async def renew_outbox(
        self, message_ids: Sequence[str], owner: str, expires_at: datetime
    ) -> Sequence[str]:
        if not message_ids:
            return []
        async with self._write() as conn:
            renewed = await conn.execute(
                update(OutboxRow)
                .where(
                    OutboxRow.id.in_(list(message_ids)),
                    OutboxRow.lease_owner == owner,
                    OutboxRow.status == OutboxStatus.PENDING.value,
                )
                .values(lease_expires_at=expires_at)
                .returning(OutboxRow.id)
            )
            return [row[0] for row in renewed.all()]

    async def requeue_outbox(
        self, message_id: str, now: datetime, audit: AuditEvent
    ) -> OutboxMessage | None:
        """Put a dead message back in line with its attempts reset; None if it is not dead."""
        async with self._write() as conn:
            found = await conn.execute(
                select(OutboxRow.__table__)
                .where(OutboxRow.id == message_id, OutboxRow.status == OutboxStatus.DEAD.value)
                .with_for_update()
            )
            row = found.mappings().one_or_none()
            if row is None:
                return None
            await conn.execute(
                update(OutboxRow)
                .where(OutboxRow.id == message_id)
                .values(
                    status=OutboxStatus.PENDING.value,
                    attempts=0,
                    next_attempt_at=now,
                    lease_owner=None,
                    lease_expires_at=None,
                )
            )
            await _append_audit(conn, (audit,), self.audit_key)
        return dataclasses.replace(
            _outbox(row),
            status=OutboxStatus.PENDING,
            attempts=0,
            next_attempt_at=now,
            lease_owner=None,
            lease_expires_at=None,
        )

    async def set_agent_key(self, agent_id: str, key_sha256: str, now: datetime) -> None:
        """Make this the agent's only stored key; earlier stored keys stop working.

        Earlier keys are kept with `revoked_at` set (for the record), not deleted. A key
        stored for another agent moves to this one, as in the in-memory reference.
        """
        async with self._write() as conn:
            await conn.execute(
                update(ApiKeyRow)
                .where(
                    ApiKeyRow.agent_id == agent_id,
                    ApiKeyRow.revoked_at.is_(None),
                    ApiKeyRow.key_sha256 != key_sha256,
                )
                .values(revoked_at=now)
            )
            await conn.execute(
                _upsert(
                    conn,
                    ApiKeyRow,
                    {
                        "agent_id": agent_id,
                        "key_sha256": key_sha256,
                        "created_at": now,
                        "revoked_at": None,
                    },
                    key=("key_sha256",),
                    keep=("created_at",),
                )
            )


def _duplicate_key(exc: sa_exc.IntegrityError) -> bool:
    """Whether the INSERT broke a unique key (PostgreSQL's SQLSTATE 23505; SQLite says so),
    rather than another constraint."""
    cause = exc.orig
    return getattr(cause, "sqlstate", None) == "23505" or "UNIQUE constraint failed" in str(cause)
