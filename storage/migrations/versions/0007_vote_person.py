"""Votes name the person behind the reviewer identity (people:).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Votes stored before people existed get "": their reviewer is their own person.
    with op.batch_alter_table("votes") as batch:
        batch.add_column(sa.Column("person", sa.Text(), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("votes") as batch:
        batch.drop_column("person")
