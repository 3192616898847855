"""The SQL repository's hot-path statements, built once on the tables.

A statement built per call (ORM entities, inline `.values(...)`) pays for its construction
and for SQLAlchemy's cache-key walk every time, about a tenth of a submit's CPU. Built once
with bound parameters, each compiles once per dialect and is then only looked up; the
parameters' keys decide the INSERT's columns and an UPDATE's SET clause at execution.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Executable,
    String,
    Table,
    TextClause,
    any_,
    bindparam,
    func,
    insert,
    literal,
    literal_column,
    null,
    or_,
    select,
    text,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from storage.models import (
    AuditEventRow,
    AuditHeadRow,
    CardRow,
    IdempotencyRow,
    OutboxRow,
    RequestRow,
    TierMoveRow,
    VoteRow,
)


def _table(model: type[Any]) -> Table:
    table: Table = model.__table__
    return table


REQUESTS = _table(RequestRow)
VOTES = _table(VoteRow)
TIER_MOVES = _table(TierMoveRow)
CARDS = _table(CardRow)
OUTBOX = _table(OutboxRow)
AUDIT_EVENTS = _table(AuditEventRow)
AUDIT_HEAD = _table(AuditHeadRow)
IDEMPOTENCY = _table(IdempotencyRow)

AUDIT_HEAD_ID = 1

INSERT_VOTES = insert(VOTES)
INSERT_MOVES = insert(TIER_MOVES)
INSERT_CARDS = insert(CARDS)
# New requests go in as one executemany of a plain INSERT (psycopg pipelines it): a
# multi-row INSERT ... RETURNING of ~40 columns per row is a new SQL text for every batch
# size, which psycopg parses again each time (it caches statements of at most 50
# parameters). A duplicate id fails the INSERT; the writer reports it as a VersionConflict.
INSERT_REQUESTS = insert(REQUESTS)
INSERT_OUTBOX = insert(OUTBOX)
INSERT_AUDIT = insert(AUDIT_EVENTS)

# Bound names differ from the column names: those are the SET clause's.
UPDATE_REQUEST = update(REQUESTS).where(
    REQUESTS.c.id == bindparam("match_id"), REQUESTS.c.version == bindparam("match_version")
)

# How many votes and moves are stored, in one round trip instead of two.
CHILD_COUNTS = select(
    select(func.count())
    .select_from(VOTES)
    .where(VOTES.c.request_id == bindparam("child_of"))
    .scalar_subquery(),
    select(func.count())
    .select_from(TIER_MOVES)
    .where(TIER_MOVES.c.request_id == bindparam("child_of"))
    .scalar_subquery(),
)

LOCK_AUDIT_HEAD = (
    select(AUDIT_HEAD.c.seq, AUDIT_HEAD.c.hash, AUDIT_HEAD.c.key_id)
    .where(AUDIT_HEAD.c.id == AUDIT_HEAD_ID)
    .with_for_update()
)
MOVE_AUDIT_HEAD = (
    update(AUDIT_HEAD)
    .where(AUDIT_HEAD.c.id == AUDIT_HEAD_ID)
    .values(seq=bindparam("head_seq"), hash=bindparam("head_hash"), key_id=bindparam("head_key_id"))
)


# A request with its votes and tier moves in ONE statement: one row per child (one row with
# no child when it has none). A single statement reads one snapshot, so PostgreSQL needs no
# REPEATABLE READ transaction (and its extra round trips) to make the three agree.
_bound_id: BindParameter[str] = bindparam("request_id")
_children = union_all(
    select(
        VOTES.c.request_id,
        literal("vote").label("child_kind"),
        VOTES.c.seq.label("child_seq"),
        VOTES.c.reviewer.label("child_1"),
        VOTES.c.name.label("child_2"),
        VOTES.c.verdict.label("child_3"),
        VOTES.c.rationale.label("child_4"),
        VOTES.c.channel.label("child_5"),
        VOTES.c.action_sha256.label("child_6"),
        VOTES.c.person.label("child_7"),
        VOTES.c.response.label("child_8"),
        VOTES.c.at.label("child_at"),
    ).where(VOTES.c.request_id == _bound_id),
    select(
        TIER_MOVES.c.request_id,
        literal("move"),
        TIER_MOVES.c.seq,
        TIER_MOVES.c.from_tier,
        TIER_MOVES.c.to_tier,
        TIER_MOVES.c.reason,
        null(),
        null(),
        null(),
        null(),
        null(),
        TIER_MOVES.c.at,
    ).where(TIER_MOVES.c.request_id == _bound_id),
).subquery("children")
GET_REQUEST = (
    select(REQUESTS, *(c for c in _children.c if c.name != "request_id"))
    .select_from(REQUESTS.outerjoin(_children, _children.c.request_id == REQUESTS.c.id))
    .where(REQUESTS.c.id == _bound_id)
    .order_by(_children.c.child_kind, _children.c.child_seq)
)

# Literal (not bound) so the planners can match the partial indexes' predicate.
PENDING: ColumnElement[str] = literal_column("'pending'")

# Leases the due messages in one statement (no SELECT then UPDATE round trip). Due means
# pending, `next_attempt_at <= now` and no lease or an expired one, oldest first;
# PostgreSQL skips rows another claimer holds locked, SQLite's write lock serialises.
# Only the kinds of one lane, and none for a destination whose cap is reached ("busy").
_due = (
    select(OUTBOX.c.id)
    .where(
        OUTBOX.c.status == PENDING,
        OUTBOX.c.next_attempt_at <= bindparam("due_at"),
        or_(OUTBOX.c.lease_expires_at.is_(None), OUTBOX.c.lease_expires_at <= bindparam("due_at")),
        # A worker never claims again what it still runs (even past its lease).
        or_(OUTBOX.c.lease_owner.is_(None), OUTBOX.c.lease_owner != bindparam("claimer")),
        OUTBOX.c.kind.in_(bindparam("kinds", expanding=True)),
        or_(
            OUTBOX.c.destination.is_(None),
            OUTBOX.c.destination.not_in(bindparam("busy", expanding=True)),
        ),
    )
    .order_by(OUTBOX.c.next_attempt_at, OUTBOX.c.id)
    .limit(bindparam("claim_limit"))
    .with_for_update(skip_locked=True)
)
CLAIM_OUTBOX = (
    update(OUTBOX)
    .where(OUTBOX.c.id.in_(_due.scalar_subquery()))
    .values(lease_owner=bindparam("owner"), lease_expires_at=bindparam("expires"))
    .returning(*OUTBOX.c)
)

# PostgreSQL: the chain's new links and its moved head in ONE statement. The head row lock
# is held from LOCK_AUDIT_HEAD until commit, so every round trip saved inside it is time
# every other writer no longer queues. (A data-modifying CTE runs even unreferenced.)
APPEND_AUDIT_POSTGRES: TextClause = text(
    "WITH moved AS ("
    " UPDATE audit_head SET seq = :head_seq, hash = :head_hash, key_id = :head_key_id"
    " WHERE id = 1"
    ") INSERT INTO audit_events"
    " (seq, event, at, request_id, actor, channel, reason, risk, data, prev_hash, hash)"
    " SELECT * FROM unnest("
    " CAST(:seqs AS bigint[]), CAST(:events AS text[]), CAST(:ats AS timestamptz[]),"
    " CAST(:request_ids AS text[]), CAST(:actors AS text[]), CAST(:channels AS text[]),"
    " CAST(:reasons AS text[]), CAST(:risks AS text[]), CAST(:datas AS json[]),"
    " CAST(:prev_hashes AS text[]), CAST(:hashes AS text[]))"
)


class DialectStatements:
    """Statements whose construct differs by dialect (upsert spellings)."""

    def __init__(self, postgres: bool) -> None:
        dialect_insert = postgresql.insert if postgres else sqlite.insert
        # RETURNING, not rowcount, tells whether the row went in: psycopg reports rowcount
        # -1 for INSERTs compiled by SQLAlchemy. (RETURNING needs SQLite 3.35 or later.)
        # CHILD_COUNTS for several requests at once. PostgreSQL takes the ids as one array
        # parameter, so the statement's text is the same whatever the batch size.
        ids: ColumnElement[bool] = (
            REQUESTS.c.id == any_(bindparam("ids", type_=postgresql.ARRAY(String)))
            if postgres
            else REQUESTS.c.id.in_(bindparam("ids", expanding=True))
        )
        self.child_counts_many: Executable = select(
            REQUESTS.c.id,
            select(func.count())
            .select_from(VOTES)
            .where(VOTES.c.request_id == REQUESTS.c.id)
            .scalar_subquery(),
            select(func.count())
            .select_from(TIER_MOVES)
            .where(TIER_MOVES.c.request_id == REQUESTS.c.id)
            .scalar_subquery(),
        ).where(ids)
        self.insert_idempotency: Executable = (
            dialect_insert(IDEMPOTENCY).on_conflict_do_nothing().returning(literal_column("1"))
        )
