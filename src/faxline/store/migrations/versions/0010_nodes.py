"""nodes (heartbeats of the processes that share the database), deliveries.call_route (the
route whose call slot a sending delivery holds: cluster-wide maxCalls), and
registration_leases (which node keeps each trunk's registration)

Revision ID: 0010_nodes
Revises: 0009_call_records
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_nodes"
down_revision = "0009_call_records"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "nodes",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("calls_running", sa.Integer(), nullable=False),
        sa.Column("max_calls", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_nodes_last_seen_at", "nodes", ["last_seen_at"])
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("call_route", sa.String(length=64), nullable=True))
    op.create_index("ix_deliveries_call_route", "deliveries", ["call_route", "status"])
    op.create_table(
        "registration_leases",
        sa.Column("trunk", sa.String(length=64), nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("trunk"),
    )


def downgrade() -> None:
    op.drop_table("registration_leases")
    op.drop_index("ix_deliveries_call_route", table_name="deliveries")
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("call_route")
    op.drop_index("ix_nodes_last_seen_at", table_name="nodes")
    op.drop_table("nodes")
