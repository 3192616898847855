"""One-time web sign-in tokens in the database, so a link works on every replica.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "login_tokens",
        sa.Column("digest", sa.Text(), nullable=False),
        sa.Column("login", sa.Text(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("digest", name="pk_login_tokens"),
    )
    op.create_index("ix_login_tokens_expires_at", "login_tokens", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_login_tokens_expires_at", table_name="login_tokens")
    op.drop_table("login_tokens")
