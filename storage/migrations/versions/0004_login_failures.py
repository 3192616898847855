"""Failed web sign-ins in the database, so a lock-out holds on every replica.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "login_failures",
        sa.Column("login", sa.Text(), nullable=False),
        sa.Column("recent", sa.JSON(), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("login", name="pk_login_failures"),
    )
    op.create_index("ix_login_failures_updated_at", "login_failures", ["updated_at"])


def downgrade() -> None:
    op.drop_index("ix_login_failures_updated_at", table_name="login_failures")
    op.drop_table("login_failures")
