"""apps.provisioned_hash: the secret hash as the provisioning file gave it

Revision ID: 0003_app_secret_source
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_app_secret_source"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("apps") as batch:
        batch.add_column(sa.Column("provisioned_hash", sa.String(length=255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("apps") as batch:
        batch.drop_column("provisioned_hash")
