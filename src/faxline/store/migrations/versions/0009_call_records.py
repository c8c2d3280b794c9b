"""attempts become call records: direction, answer time, trunk, both numbers and the fax;
inbound calls are records without a delivery

Revision ID: 0009_call_records
Revises: 0008_blobs
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_call_records"
down_revision = "0008_blobs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("attempts") as batch:
        batch.alter_column("delivery_id", existing_type=sa.Integer(), nullable=True)
        batch.add_column(
            sa.Column("direction", sa.String(length=3), nullable=False, server_default="out")
        )
        batch.add_column(sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("trunk", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("local_number", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("remote_number", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("fax_id", sa.Integer(), nullable=True))
    # The export reads records by start time.
    op.create_index("ix_attempts_started_at", "attempts", ["started_at"])


def downgrade() -> None:
    op.drop_index("ix_attempts_started_at", table_name="attempts")
    op.execute("DELETE FROM attempts WHERE delivery_id IS NULL")  # inbound records
    with op.batch_alter_table("attempts") as batch:
        for column in (
            "fax_id",
            "remote_number",
            "local_number",
            "trunk",
            "answered_at",
            "direction",
        ):
            batch.drop_column(column)
        batch.alter_column("delivery_id", existing_type=sa.Integer(), nullable=False)
