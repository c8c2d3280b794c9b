"""Deliveries name the attempt that holds their lease (its writes are fenced by it).

Revision ID: 0005_once_lease_attempt
Revises: 0004_docs_cover_resolution
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_once_lease_attempt"
down_revision = "0004_docs_cover_resolution"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("lease_attempt_id", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("lease_attempt_id")
