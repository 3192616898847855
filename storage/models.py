"""SQLAlchemy tables of the SQL repository; the Alembic migrations must produce exactly these.

Enumerations are stored as plain strings (no database enum types) so that adding a value is
not a schema migration. Every timestamp goes through `UtcDateTime`, which keeps them UTC on
the way in and timezone-aware on the way out, on PostgreSQL and SQLite alike.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from bot.core.domain import as_utc

# Deterministic constraint names keep migrations and the models comparable on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# The partial indexes below only help queries that repeat this predicate with a literal. They
# end in `id` because the sweeps order by (time, id): the index then yields rows in order.
PENDING = text("status = 'pending'")


class UtcDateTime(TypeDecorator[datetime]):
    """`DateTime(timezone=True)` that always binds UTC and always returns aware UTC values.

    SQLite has no timezone type: SQLAlchemy writes the wall-clock digits and reads them back
    naive, so normalising to UTC before binding keeps stored values (and their text order)
    comparable, and `as_utc` restores the zone on the way out.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else as_utc(value)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else as_utc(value)


# Enumerations (status, lane, verdict, ...) are short words; hashes are 64 hex digits.
Word = String(32)
Hash = String(64)

# Nullable JSON columns store SQL NULL for None, so "no modified action" is not JSON 'null'.
NullableJSON = JSON(none_as_null=True)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UtcDateTime,
        str: Text,
        dict[str, Any]: JSON,
        list[Any]: JSON,
    }


class RequestRow(Base):
    __tablename__ = "requests"

    id: Mapped[str] = mapped_column(primary_key=True)
    agent_id: Mapped[str]
    thread_id: Mapped[str | None]
    action: Mapped[dict[str, Any]]
    modified_action: Mapped[dict[str, Any] | None] = mapped_column(NullableJSON)
    confidence: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(Word)
    lane: Mapped[str] = mapped_column(Word)
    risk: Mapped[str] = mapped_column(Word)
    reasons: Mapped[list[Any]]
    tier: Mapped[str | None]
    approvals_required: Mapped[int] = mapped_column(Integer)
    review: Mapped[str] = mapped_column(Word)
    review_status: Mapped[str | None] = mapped_column(Word)
    amount: Mapped[float] = mapped_column(Float)
    currency: Mapped[str]
    reversible: Mapped[bool] = mapped_column(Boolean)
    domain: Mapped[str]
    sentiment: Mapped[float] = mapped_column(Float)
    requested_by: Mapped[str | None]
    callback_url: Mapped[str | None]
    labels: Mapped[dict[str, Any]]
    context: Mapped[dict[str, Any]]
    outcome: Mapped[dict[str, Any] | None] = mapped_column(NullableJSON)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    decided_at: Mapped[datetime | None]
    deadline_at: Mapped[datetime | None]
    remind_at: Mapped[datetime | None]
    version: Mapped[int] = mapped_column(Integer)
    canary: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    predicted_escalation: Mapped[float | None] = mapped_column(Float)
    cost: Mapped[float | None] = mapped_column(Float)
    # [{reason, title, explain}]: `reasons` in words as routed; NULL for older rows.
    reason_texts: Mapped[list[Any] | None] = mapped_column(NullableJSON)
    question: Mapped[str | None]
    response_schema: Mapped[dict[str, Any] | None] = mapped_column(NullableJSON)
    reject_options: Mapped[list[Any] | None] = mapped_column(NullableJSON)

    __table_args__ = (
        Index(
            "ix_requests_deadline_pending",
            "deadline_at",
            "id",
            sqlite_where=PENDING,
            postgresql_where=PENDING,
        ),
        Index(
            "ix_requests_remind_pending",
            "remind_at",
            "id",
            sqlite_where=PENDING,
            postgresql_where=PENDING,
        ),
        Index("ix_requests_agent_id_id", "agent_id", "id"),
        Index("ix_requests_status_id", "status", "id"),
    )


class VoteRow(Base):
    __tablename__ = "votes"

    request_id: Mapped[str] = mapped_column(
        ForeignKey("requests.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    reviewer: Mapped[str]
    name: Mapped[str]
    verdict: Mapped[str] = mapped_column(Word)
    rationale: Mapped[str]
    at: Mapped[datetime]
    channel: Mapped[str]
    action_sha256: Mapped[str] = mapped_column(Hash)
    # The person behind `reviewer` (people:); "" for votes stored before people existed.
    person: Mapped[str] = mapped_column(default="", server_default="")
    # A `respond` vote's answer (any JSON value but null); NULL for other verdicts.
    response: Mapped[Any | None] = mapped_column(NullableJSON)


class TierMoveRow(Base):
    __tablename__ = "tier_moves"

    request_id: Mapped[str] = mapped_column(
        ForeignKey("requests.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    from_tier: Mapped[str | None]
    to_tier: Mapped[str]
    at: Mapped[datetime]
    reason: Mapped[str]


class CardRow(Base):
    """One posted copy of a card. No foreign key: like the outbox, cards may name a request
    the repository never saw (the in-memory reference accepts that too)."""

    __tablename__ = "cards"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(index=True)
    channel: Mapped[str]
    tier: Mapped[str]
    ref: Mapped[dict[str, Any]]
    posted_at: Mapped[datetime]


class OutboxRow(Base):
    __tablename__ = "outbox"

    id: Mapped[str] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(Word)
    request_id: Mapped[str | None] = mapped_column(index=True)
    # Copied out of payload["agent_id"] at insert so list_outbox can filter on a column.
    agent_id: Mapped[str | None]
    payload: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    next_attempt_at: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(Word)
    last_error: Mapped[str | None]
    lease_owner: Mapped[str | None]
    lease_expires_at: Mapped[datetime | None]
    # The receiver (bot.lanes.destination), set at insert: a claim skips destinations whose
    # per-destination cap is reached. NULL on rows written before the column existed.
    destination: Mapped[str | None]

    __table_args__ = (
        Index("ix_outbox_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_outbox_kind_status", "kind", "status"),
    )


class AuditEventRow(Base):
    __tablename__ = "audit_events"

    # Assigned under the audit_head lock, never by the database: gaps would break the chain.
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    event: Mapped[str]
    at: Mapped[datetime] = mapped_column(index=True)
    request_id: Mapped[str | None] = mapped_column(index=True)
    actor: Mapped[str]
    channel: Mapped[str]
    reason: Mapped[str | None]
    risk: Mapped[str | None] = mapped_column(Word)
    data: Mapped[dict[str, Any]]
    prev_hash: Mapped[str] = mapped_column(Hash)
    hash: Mapped[str] = mapped_column(Hash)


class AuditHeadRow(Base):
    """The single row (id 1) naming the chain's last link; locking it orders all appends."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(Hash)
    # The audit key the last link was made with (None: unkeyed); a different key first
    # writes an `audit_keyed` event.
    key_id: Mapped[str | None] = mapped_column(String(16))
    # The checkpoint interval last taken by a replica, so N replicas write one per interval.
    checkpoint_slot: Mapped[int | None] = mapped_column(BigInteger)


class IdempotencyRow(Base):
    __tablename__ = "idempotency_keys"

    agent_id: Mapped[str] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(primary_key=True)
    body_sha256: Mapped[str] = mapped_column(Hash)
    request_id: Mapped[str]
    response: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]


class AgentStateRow(Base):
    __tablename__ = "agent_states"

    agent_id: Mapped[str] = mapped_column(primary_key=True)
    stopped: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str]
    actor: Mapped[str]
    at: Mapped[datetime]


class ApiKeyRow(Base):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    agent_id: Mapped[str] = mapped_column(index=True)
    key_sha256: Mapped[str] = mapped_column(unique=True)
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class AlertRow(Base):
    """The state of one warning sign (bot.core.domain.Alert); the flip of `active` is claimed with a
    conditional UPDATE so that one replica, not every replica, announces it."""

    __tablename__ = "alerts"

    code: Mapped[str] = mapped_column(primary_key=True)
    subject: Mapped[str] = mapped_column(primary_key=True)
    active: Mapped[bool] = mapped_column(Boolean)
    message: Mapped[str]
    figures: Mapped[dict[str, Any]]
    raised_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    cleared_at: Mapped[datetime | None]


OPEN_BATCH = text("status = 'open'")


class BatchCardRow(Base):
    """A batch card (bot.core.domain.BatchCard). The partial unique index allows one open card per
    group: a planner's conditional insert that loses to another replica's inserts nothing."""

    __tablename__ = "batch_cards"

    id: Mapped[str] = mapped_column(primary_key=True)
    tier: Mapped[str]
    kind: Mapped[str]
    channel: Mapped[str]
    target: Mapped[str]
    status: Mapped[str] = mapped_column(Word)
    members: Mapped[list[Any]]
    total: Mapped[int] = mapped_column(Integer)
    ref: Mapped[dict[str, Any] | None] = mapped_column(NullableJSON)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    version: Mapped[int] = mapped_column(Integer)

    __table_args__ = (
        Index(
            "ix_batch_cards_open_group",
            "tier",
            "kind",
            "channel",
            "target",
            unique=True,
            sqlite_where=OPEN_BATCH,
            postgresql_where=OPEN_BATCH,
        ),
    )


class LoginFailureRow(Base):
    """Recent failed web sign-ins per login name and client address, shared by every replica
    (bot.core.domain LoginFailures); `recent` holds ISO timestamps."""

    __tablename__ = "login_failures"

    login: Mapped[str] = mapped_column(primary_key=True)
    address: Mapped[str] = mapped_column(primary_key=True)
    recent: Mapped[list[Any]]
    locked_until: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(index=True)


class WebSessionRow(Base):
    """A signed-in web inbox session (bot.core.domain WebSession): the browser holds the secret
    whose SHA-256 is `token_sha256`."""

    __tablename__ = "web_sessions"

    id: Mapped[str] = mapped_column(primary_key=True)
    token_sha256: Mapped[str] = mapped_column(Hash, unique=True)
    login: Mapped[str]
    name: Mapped[str]
    method: Mapped[str] = mapped_column(Word)
    fingerprint: Mapped[str]
    address: Mapped[str]
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)
    revoked_at: Mapped[datetime | None]
    revoked_by: Mapped[str | None]


class LoginTokenRow(Base):
    """One-time web sign-in tokens (`signoff web login-link`), kept by SHA-256 so any
    replica can redeem one that another process issued."""

    __tablename__ = "login_tokens"

    digest: Mapped[str] = mapped_column(primary_key=True)
    login: Mapped[str]
    expires_at: Mapped[datetime] = mapped_column(index=True)


class StandingApprovalRow(Base):
    """A standing approval (bot.core.learning.StandingApproval). `uses` is only ever raised
    by a conditional UPDATE (`uses < max_uses`), so racing replicas cannot overspend it."""

    __tablename__ = "standing_approvals"

    id: Mapped[str] = mapped_column(primary_key=True)
    grantor: Mapped[str]
    agent_id: Mapped[str]
    kind: Mapped[str]
    condition: Mapped[str | None]
    max_risk: Mapped[str] = mapped_column(Word)
    max_uses: Mapped[int] = mapped_column(Integer)
    uses: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str]
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    revoked_by: Mapped[str | None]

    __table_args__ = (Index("ix_standing_approvals_agent_id_kind", "agent_id", "kind"),)


class PredictionModelRow(Base):
    """A trained escalation model (bot.core.learning.PredictionModel): plain JSON parameters,
    never a pickle; at most one row is active."""

    __tablename__ = "prediction_models"

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    created_at: Mapped[datetime]
    created_by: Mapped[str]
    window_start: Mapped[datetime]
    window_end: Mapped[datetime]
    features: Mapped[list[Any]]
    parameters: Mapped[dict[str, Any]]
    metrics: Mapped[dict[str, Any]]
    sha256: Mapped[str] = mapped_column(Hash)
    active: Mapped[bool] = mapped_column(Boolean)
    activated_at: Mapped[datetime | None]
