"""The blob store a database calls for (see store.blobs)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine

from faxline.store.blobrows import RowBlobStore
from faxline.store.blobs import BlobStore
from faxline.store.files import FileStore


def blob_store_for(engine: Engine, data_dir: Path) -> BlobStore:
    """PostgreSQL keeps blobs in the database (any node reads them); SQLite, which is one
    machine's database anyway, keeps them as files in `data_dir`'s `faxes/` folder (the
    PostgreSQL store uses `spool/` there for node-local copies)."""
    if engine.dialect.name == "postgresql":
        return RowBlobStore(engine, data_dir / "spool")
    return FileStore(data_dir / "faxes")
