"""blobs and blob_chunks: fax documents in the database on PostgreSQL; moves the data
directory's files in when the migration is told where it is

Revision ID: 0008_blobs
Revises: 0007_web_sessions

The data directory is handed over by faxline (`store.db.migrate(engine, documents_dir=...)`,
which `faxline serve`, `worker`, `provision` and `migrate` do with their `--data-dir`) as
the Alembic config attribute ``documents_dir``. The files copied are listed in the attribute
``moved_files`` and removed by the caller only once the migration's transaction committed.
Without it (plain `alembic upgrade`) only the tables are made; `faxline migrate --data-dir`
moves the files later. SQLite gets the tables too (one schema), and keeps its files.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import context, op

from faxline.clock import utc_now
from faxline.store.blobrows import import_files

revision = "0008_blobs"
down_revision = "0007_web_sessions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "blobs",
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("chunk_size", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "blob_chunks",
        sa.Column("blob_name", sa.String(length=255), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["blob_name"], ["blobs.name"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("blob_name", "seq"),
    )
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    # Uncompressed, out of line: substring() then reads only the slices asked for.
    op.execute("ALTER TABLE blob_chunks ALTER COLUMN data SET STORAGE EXTERNAL")
    documents_dir = context.config.attributes.get("documents_dir")
    if documents_dir is not None:
        moved = import_files(bind, Path(documents_dir), utc_now())
        context.config.attributes.setdefault("moved_files", []).extend(moved)


def downgrade() -> None:
    op.drop_table("blob_chunks")
    op.drop_table("blobs")
