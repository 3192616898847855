"""Requests keep reasons in words, a question, an answer schema, reject options; votes an answer.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("requests") as batch:
        batch.add_column(sa.Column("reason_texts", sa.JSON(none_as_null=True), nullable=True))
        batch.add_column(sa.Column("question", sa.Text(), nullable=True))
        batch.add_column(sa.Column("response_schema", sa.JSON(none_as_null=True), nullable=True))
        batch.add_column(sa.Column("reject_options", sa.JSON(none_as_null=True), nullable=True))
    with op.batch_alter_table("votes") as batch:
        batch.add_column(sa.Column("response", sa.JSON(none_as_null=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("votes") as batch:
        batch.drop_column("response")
    with op.batch_alter_table("requests") as batch:
        batch.drop_column("reject_options")
        batch.drop_column("response_schema")
        batch.drop_column("question")
        batch.drop_column("reason_texts")
