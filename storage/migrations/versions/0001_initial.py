"""Initial schema: requests with votes and tier moves, outbox, cards, audit chain, agents.

Revision ID: 0001
Revises:
Create Date: 2026-11-23

Frozen history: this file spells out its types instead of importing storage.models, so
later model changes cannot rewrite what revision 0001 created.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GENESIS_HASH = "0" * 64
PENDING = "status = 'pending'"


def _utc(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _text(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.Text(), nullable=nullable)


def _word(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.String(length=32), nullable=nullable)


def _hash(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.String(length=64), nullable=False)


def _json(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.JSON(none_as_null=nullable), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "requests",
        _text("id"),
        _text("agent_id"),
        _text("thread_id", nullable=True),
        _json("action"),
        _json("modified_action", nullable=True),
        sa.Column("confidence", sa.Float(), nullable=False),
        _word("status"),
        _word("lane"),
        _word("risk"),
        _json("reasons"),
        _text("tier", nullable=True),
        sa.Column("approvals_required", sa.Integer(), nullable=False),
        _word("review"),
        _word("review_status", nullable=True),
        sa.Column("amount", sa.Float(), nullable=False),
        _text("currency"),
        sa.Column("reversible", sa.Boolean(), nullable=False),
        _text("domain"),
        sa.Column("sentiment", sa.Float(), nullable=False),
        _text("requested_by", nullable=True),
        _text("callback_url", nullable=True),
        _json("labels"),
        _json("context"),
        _json("outcome", nullable=True),
        _utc("created_at"),
        _utc("updated_at"),
        _utc("decided_at", nullable=True),
        _utc("deadline_at", nullable=True),
        _utc("remind_at", nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_requests"),
    )
    op.create_index("ix_requests_agent_id_id", "requests", ["agent_id", "id"])
    op.create_index("ix_requests_status_id", "requests", ["status", "id"])
    # Partial: the SLA and reminder sweeps only ever look at pending rows.
    for name, column in (
        ("ix_requests_deadline_pending", "deadline_at"),
        ("ix_requests_remind_pending", "remind_at"),
    ):
        op.create_index(
            name,
            "requests",
            [column, "id"],
            sqlite_where=sa.text(PENDING),
            postgresql_where=sa.text(PENDING),
        )

    for table in ("votes", "tier_moves"):
        extra = (
            [
                _text("reviewer"),
                _text("name"),
                _word("verdict"),
                _text("rationale"),
                _utc("at"),
                _text("channel"),
                _hash("action_sha256"),
            ]
            if table == "votes"
            else [
                _text("from_tier", nullable=True),
                _text("to_tier"),
                _utc("at"),
                _text("reason"),
            ]
        )
        op.create_table(
            table,
            _text("request_id"),
            sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
            *extra,
            sa.ForeignKeyConstraint(
                ["request_id"],
                ["requests.id"],
                name=f"fk_{table}_request_id_requests",
                ondelete="CASCADE",
            ),
            sa.PrimaryKeyConstraint("request_id", "seq", name=f"pk_{table}"),
        )

    op.create_table(
        "cards",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        _text("request_id"),
        _text("channel"),
        _text("tier"),
        _json("ref"),
        _utc("posted_at"),
        sa.PrimaryKeyConstraint("id", name="pk_cards"),
    )
    op.create_index("ix_cards_request_id", "cards", ["request_id"])

    op.create_table(
        "outbox",
        _text("id"),
        _word("kind"),
        _text("request_id", nullable=True),
        _text("agent_id", nullable=True),
        _json("payload"),
        _utc("created_at"),
        _utc("next_attempt_at"),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _word("status"),
        _text("last_error", nullable=True),
        _text("lease_owner", nullable=True),
        _utc("lease_expires_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
    )
    op.create_index("ix_outbox_status_next_attempt_at", "outbox", ["status", "next_attempt_at"])
    op.create_index("ix_outbox_kind_status", "outbox", ["kind", "status"])
    op.create_index("ix_outbox_request_id", "outbox", ["request_id"])

    op.create_table(
        "audit_events",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        _text("event"),
        _utc("at"),
        _text("request_id", nullable=True),
        _text("actor"),
        _text("channel"),
        _text("reason", nullable=True),
        _word("risk", nullable=True),
        _json("data"),
        _hash("prev_hash"),
        _hash("hash"),
        sa.PrimaryKeyConstraint("seq", name="pk_audit_events"),
    )
    op.create_index("ix_audit_events_at", "audit_events", ["at"])
    op.create_index("ix_audit_events_request_id", "audit_events", ["request_id"])

    audit_head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        _hash("hash"),
        sa.PrimaryKeyConstraint("id", name="pk_audit_head"),
    )
    # The row every append locks; it must exist before the first event.
    op.bulk_insert(audit_head, [{"id": 1, "seq": 0, "hash": GENESIS_HASH}])

    op.create_table(
        "idempotency_keys",
        _text("agent_id"),
        _text("key"),
        _hash("body_sha256"),
        _text("request_id"),
        _json("response"),
        _utc("created_at"),
        sa.PrimaryKeyConstraint("agent_id", "key", name="pk_idempotency_keys"),
    )

    op.create_table(
        "agent_states",
        _text("agent_id"),
        sa.Column("stopped", sa.Boolean(), nullable=False),
        _text("reason"),
        _text("actor"),
        _utc("at"),
        sa.PrimaryKeyConstraint("agent_id", name="pk_agent_states"),
    )

    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        _text("agent_id"),
        _text("key_sha256"),
        _utc("created_at"),
        _utc("revoked_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
        sa.UniqueConstraint("key_sha256", name="uq_api_keys_key_sha256"),
    )
    op.create_index("ix_api_keys_agent_id", "api_keys", ["agent_id"])


def downgrade() -> None:
    for table in (
        "api_keys",
        "agent_states",
        "idempotency_keys",
        "audit_head",
        "audit_events",
        "outbox",
        "cards",
        "tier_moves",
        "votes",
        "requests",
    ):
        # Dropping a table drops its indexes with it on both backends.
        op.drop_table(table)
