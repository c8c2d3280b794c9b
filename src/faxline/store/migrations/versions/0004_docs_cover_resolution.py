"""organizations.cover_template (an organization's own cover page template) and
attempts.resolution (set when fine pages were refused and resent at standard)

Revision ID: 0004_docs_cover_resolution
Revises: 0003_app_secret_source
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_docs_cover_resolution"
down_revision = "0003_app_secret_source"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("organizations") as batch:
        batch.add_column(sa.Column("cover_template", sa.Text(), nullable=True))
    with op.batch_alter_table("attempts") as batch:
        batch.add_column(sa.Column("resolution", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("attempts") as batch:
        batch.drop_column("resolution")
    with op.batch_alter_table("organizations") as batch:
        batch.drop_column("cover_template")
