"""faxes.resolution takes "superfine" (nine characters; the column held eight)

Revision ID: 0011_superfine
Revises: 0010_nodes
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_superfine"
down_revision = "0010_nodes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("faxes") as batch:
        batch.alter_column(
            "resolution", existing_type=sa.String(length=8), type_=sa.String(length=16)
        )


def downgrade() -> None:
    with op.batch_alter_table("faxes") as batch:
        batch.alter_column(
            "resolution", existing_type=sa.String(length=16), type_=sa.String(length=8)
        )
