"""SQL statement helpers and the mapping between table rows and domain values."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Executable,
    func,
    literal_column,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.core.audit_chain import AuditAnchor, AuditKey, UnkeyedAppend, link_events
from bot.core.domain import (
    Action,
    Alert,
    ApprovalRequest,
    AuditEvent,
    AuditRecord,
    BatchCard,
    BatchStatus,
    CardRef,
    LoginFailures,
    OutboxKind,
    OutboxMessage,
    OutboxStatus,
    ReasonText,
    ReviewStatus,
    Status,
    TierMove,
    Verdict,
    Vote,
    as_utc,
)
from bot.core.errors import (
    StorageError,
)
from bot.core.lanes import destination
from routing import Lane, ReviewState, Risk
from storage._statements import (
    APPEND_AUDIT_POSTGRES,
    INSERT_AUDIT,
    LOCK_AUDIT_HEAD,
    MOVE_AUDIT_HEAD,
)
from storage.models import (
    TierMoveRow,
    VoteRow,
)

# -- statement helpers ------------------------------------------------------------------


def _dialect_insert(conn: AsyncConnection, model: type[Any]) -> Any:
    # Both dialects spell upserts the same way; only the construct's module differs.
    if conn.dialect.name == "postgresql":
        return postgresql.insert(model)
    return sqlite.insert(model)


def _insert_ignoring_duplicates(
    conn: AsyncConnection, model: type[Any], values: Mapping[str, Any]
) -> Executable:
    """INSERT that returns no row on a key clash instead of aborting the transaction.

    RETURNING, not rowcount, tells the outcome: psycopg reports rowcount -1 for INSERTs
    compiled by SQLAlchemy. (RETURNING needs SQLite 3.35 or later.)
    """
    stmt = _dialect_insert(conn, model).values(**values).on_conflict_do_nothing()
    returning: Executable = stmt.returning(literal_column("1"))
    return returning


def _upsert(
    conn: AsyncConnection,
    model: type[Any],
    values: Mapping[str, Any],
    *,
    key: Sequence[str],
    keep: Sequence[str] = (),
) -> Executable:
    stmt = _dialect_insert(conn, model).values(**values)
    changed = {name: stmt.excluded[name] for name in values if name not in (*key, *keep)}
    upsert: Executable = stmt.on_conflict_do_update(index_elements=list(key), set_=changed)
    return upsert


async def _count(conn: AsyncConnection, *where: Any) -> int:
    found = await conn.execute(select(func.count()).where(*where))
    return int(found.scalar_one())


async def _append_audit(
    conn: AsyncConnection,
    events: Sequence[AuditEvent],
    key: AuditKey | None,
    *,
    switch_at: datetime | None = None,
) -> bool:
    """Link `events` to the chain. Called last in a transaction: the head lock serialises.

    `switch_at` writes the `audit_keyed` event even without other events. True when any
    event was written."""
    if not events and switch_at is None:
        return False
    head = (await conn.execute(LOCK_AUDIT_HEAD)).one_or_none()
    if head is None:
        raise StorageError("the audit chain has no head row; run `signoff db upgrade`")
    anchor = AuditAnchor(int(head.seq), str(head.hash), head.key_id)
    try:
        records, moved = link_events(anchor, events, key, switch_at=switch_at)
    except UnkeyedAppend as exc:
        raise StorageError(str(exc)) from exc
    if not records:
        return False
    seq, prev = moved.seq, moved.hash
    rows = [
        {
            "seq": record.seq,
            "event": record.event.event,
            "at": record.event.at,
            "request_id": record.event.request_id,
            "actor": record.event.actor,
            "channel": record.event.channel,
            "reason": record.event.reason,
            "risk": record.event.risk,
            "data": dict(record.event.data),
            "prev_hash": record.prev_hash,
            "hash": record.hash,
        }
        for record in records
    ]
    if conn.dialect.name == "postgresql":
        await conn.execute(APPEND_AUDIT_POSTGRES, _audit_arrays(rows, seq, prev, moved.key_id))
        return True
    await conn.execute(INSERT_AUDIT, rows)
    await conn.execute(
        MOVE_AUDIT_HEAD, {"head_seq": seq, "head_hash": prev, "head_key_id": moved.key_id}
    )
    return True


def _audit_arrays(
    rows: Sequence[Mapping[str, Any]], seq: int, head: str, key_id: str | None
) -> dict[str, Any]:
    """APPEND_AUDIT_POSTGRES's parameters: one array per column, the JSON as text."""

    def column(name: str) -> list[Any]:
        return [row[name] for row in rows]

    return {
        "head_seq": seq,
        "head_hash": head,
        "head_key_id": key_id,
        "seqs": column("seq"),
        "events": column("event"),
        "ats": [as_utc(row["at"]) for row in rows],
        "request_ids": column("request_id"),
        "actors": column("actor"),
        "channels": column("channel"),
        "reasons": column("reason"),
        "risks": column("risk"),
        # As SQLAlchemy's JSON type would serialise it.
        "datas": [json.dumps(row["data"]) for row in rows],
        "prev_hashes": column("prev_hash"),
        "hashes": column("hash"),
    }


async def _children(
    conn: AsyncConnection, request_ids: Sequence[str]
) -> tuple[dict[str, list[Vote]], dict[str, list[TierMove]]]:
    votes: dict[str, list[Vote]] = {}
    moves: dict[str, list[TierMove]] = {}
    if not request_ids:
        return votes, moves
    found_votes = await conn.execute(
        select(VoteRow.__table__)
        .where(VoteRow.request_id.in_(request_ids))
        .order_by(VoteRow.request_id, VoteRow.seq)
    )
    for row in found_votes.mappings():
        votes.setdefault(row["request_id"], []).append(
            Vote(
                reviewer=row["reviewer"],
                name=row["name"],
                verdict=Verdict(row["verdict"]),
                rationale=row["rationale"],
                at=row["at"],
                channel=row["channel"],
                action_sha256=row["action_sha256"],
                person=row["person"] or "",
                response=row["response"],
            )
        )
    found_moves = await conn.execute(
        select(TierMoveRow.__table__)
        .where(TierMoveRow.request_id.in_(request_ids))
        .order_by(TierMoveRow.request_id, TierMoveRow.seq)
    )
    for row in found_moves.mappings():
        moves.setdefault(row["request_id"], []).append(
            TierMove(row["from_tier"], row["to_tier"], row["at"], row["reason"])
        )
    return votes, moves


# -- row <-> domain ---------------------------------------------------------------------


def _request_values(r: ApprovalRequest) -> dict[str, Any]:
    return {
        "id": r.id,
        "agent_id": r.agent_id,
        "thread_id": r.thread_id,
        "action": r.action.to_json(),
        "modified_action": r.modified_action.to_json() if r.modified_action else None,
        "confidence": r.confidence,
        "status": r.status.value,
        "lane": r.lane.value,
        "risk": r.risk.value,
        "reasons": list(r.reasons),
        "tier": r.tier,
        "approvals_required": r.approvals_required,
        "review": r.review.value,
        "review_status": r.review_status.value if r.review_status else None,
        "amount": r.amount,
        "currency": r.currency,
        "reversible": r.reversible,
        "domain": r.domain,
        "sentiment": r.sentiment,
        "requested_by": r.requested_by,
        "callback_url": r.callback_url,
        "labels": dict(r.labels),
        "context": dict(r.context),
        "outcome": dict(r.outcome) if r.outcome is not None else None,
        "created_at": r.created_at,
        "updated_at": r.updated_at,
        "decided_at": r.decided_at,
        "deadline_at": r.deadline_at,
        "remind_at": r.remind_at,
        "canary": r.canary,
        "predicted_escalation": r.predicted_escalation,
        "cost": r.cost,
        "reason_texts": [t.to_json() for t in r.reason_texts] or None,
        "question": r.question,
        "response_schema": dict(r.response_schema) if r.response_schema else None,
        "reject_options": list(r.reject_options) or None,
    }


def _login_failures(recent: Sequence[str], locked_until: datetime | None) -> LoginFailures:
    return LoginFailures(tuple(as_utc(datetime.fromisoformat(t)) for t in recent), locked_until)


def _alert_values(alert: Alert) -> dict[str, Any]:
    return {
        "code": alert.code,
        "subject": alert.subject,
        "active": True,
        "message": alert.message,
        "figures": dict(alert.figures),
        "raised_at": alert.raised_at,
        "updated_at": alert.updated_at,
        "cleared_at": None,
    }


def _request(row: RowMapping, votes: Iterable[Vote], moves: Iterable[TierMove]) -> ApprovalRequest:
    return ApprovalRequest(
        id=row["id"],
        agent_id=row["agent_id"],
        action=Action.from_json(row["action"]),
        confidence=row["confidence"],
        status=Status(row["status"]),
        lane=Lane(row["lane"]),
        risk=Risk(row["risk"]),
        reasons=tuple(row["reasons"]),
        tier=row["tier"],
        approvals_required=row["approvals_required"],
        review=ReviewState(row["review"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        thread_id=row["thread_id"],
        amount=row["amount"],
        currency=row["currency"],
        reversible=row["reversible"],
        domain=row["domain"],
        sentiment=row["sentiment"],
        requested_by=row["requested_by"],
        callback_url=row["callback_url"],
        labels=row["labels"],
        context=row["context"],
        review_status=ReviewStatus(row["review_status"]) if row["review_status"] else None,
        decided_at=row["decided_at"],
        deadline_at=row["deadline_at"],
        remind_at=row["remind_at"],
        modified_action=(
            Action.from_json(row["modified_action"]) if row["modified_action"] else None
        ),
        outcome=row["outcome"],
        votes=tuple(votes),
        history=tuple(moves),
        version=row["version"],
        canary=row["canary"],
        predicted_escalation=row["predicted_escalation"],
        cost=row["cost"],
        reason_texts=tuple(ReasonText.from_json(t) for t in row["reason_texts"] or ()),
        question=row["question"],
        response_schema=row["response_schema"],
        reject_options=tuple(row["reject_options"] or ()),
    )


def _vote_rows(request: ApprovalRequest, stored: int) -> list[dict[str, Any]]:
    """Rows for the request's votes beyond the `stored` first ones (votes only grow)."""
    return [
        _vote_values(request.id, seq, vote)
        for seq, vote in enumerate(request.votes[stored:], start=stored + 1)
    ]


def _move_rows(request: ApprovalRequest, stored: int) -> list[dict[str, Any]]:
    """Rows for the request's tier moves beyond the `stored` first ones (moves only grow)."""
    return [
        {
            "request_id": request.id,
            "seq": seq,
            "from_tier": move.from_tier,
            "to_tier": move.to_tier,
            "at": move.at,
            "reason": move.reason,
        }
        for seq, move in enumerate(request.history[stored:], start=stored + 1)
    ]


def _vote_values(request_id: str, seq: int, vote: Vote) -> dict[str, Any]:
    return {
        "request_id": request_id,
        "seq": seq,
        "reviewer": vote.reviewer,
        "name": vote.name,
        "verdict": vote.verdict.value,
        "rationale": vote.rationale,
        "at": vote.at,
        "channel": vote.channel,
        "action_sha256": vote.action_sha256,
        "person": vote.person,
        "response": vote.response,
    }


def _outbox_values(m: OutboxMessage) -> dict[str, Any]:
    agent_id = m.payload.get("agent_id")
    return {
        "id": m.id,
        "kind": m.kind.value,
        "request_id": m.request_id,
        "agent_id": agent_id if isinstance(agent_id, str) else None,
        "payload": dict(m.payload),
        "created_at": m.created_at,
        "next_attempt_at": m.next_attempt_at,
        "attempts": m.attempts,
        "status": m.status.value,
        "last_error": m.last_error,
        "lease_owner": m.lease_owner,
        "lease_expires_at": m.lease_expires_at,
        "destination": destination(m.kind, m.payload, m.request_id),
    }


def _card_values(card: CardRef) -> dict[str, Any]:
    return {
        "request_id": card.request_id,
        "channel": card.channel,
        "tier": card.tier,
        "ref": dict(card.ref),
        "posted_at": card.posted_at,
    }


def _outbox(row: RowMapping) -> OutboxMessage:
    return OutboxMessage(
        id=row["id"],
        kind=OutboxKind(row["kind"]),
        request_id=row["request_id"],
        payload=row["payload"],
        created_at=row["created_at"],
        next_attempt_at=row["next_attempt_at"],
        attempts=row["attempts"],
        status=OutboxStatus(row["status"]),
        last_error=row["last_error"],
        lease_owner=row["lease_owner"],
        lease_expires_at=row["lease_expires_at"],
    )


def _batch_values(card: BatchCard, version: int) -> dict[str, Any]:
    return {
        "id": card.id,
        "tier": card.tier,
        "kind": card.kind,
        "channel": card.channel,
        "target": card.target,
        "status": card.status.value,
        "members": list(card.members),
        "total": card.total,
        "ref": dict(card.ref) if card.ref is not None else None,
        "created_at": card.created_at,
        "updated_at": card.updated_at,
        "version": version,
    }


def _batch(row: RowMapping) -> BatchCard:
    return BatchCard(
        id=row["id"],
        tier=row["tier"],
        kind=row["kind"],
        channel=row["channel"],
        target=row["target"],
        members=tuple(row["members"]),
        total=row["total"],
        status=BatchStatus(row["status"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        ref=row["ref"],
        version=row["version"],
    )


def _audit_record(row: RowMapping) -> AuditRecord:
    audit_event = AuditEvent(
        event=row["event"],
        at=row["at"],
        request_id=row["request_id"],
        actor=row["actor"],
        channel=row["channel"],
        reason=row["reason"],
        risk=row["risk"],
        data=row["data"],
    )
    return AuditRecord(row["seq"], audit_event, row["prev_hash"], row["hash"])
