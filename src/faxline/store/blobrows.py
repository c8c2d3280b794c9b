"""Blobs in PostgreSQL: a `blobs` row per document and its bytes in `blob_chunks` rows.

Why rows and not large objects: rows belong to the transaction that writes them like any
other (a fax and its document commit together, or neither does), a fax's blob is deleted
by a plain ``DELETE`` that cascades to its chunks, and `pg_dump` and replication carry
them with no extra step; large objects need their own cleanup (``lo_unlink``, vacuumlo)
and their own permissions.

Chunks are 256 KiB (``Blob.chunk_size`` records the size each blob was cut at). The data
column is stored EXTERNAL (uncompressed out of line: G4 data does not compress), so that
``substring`` fetches only the TOAST slices a ``pread`` asks for, not the whole chunk.
Readers run on their own autocommit connection: a slow download holds no transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from pathlib import Path

from sqlalchemy import Connection, Engine, LargeBinary, delete, func, insert, select, update
from sqlalchemy.orm import Session

from faxline.clock import utc_now
from faxline.store.blobs import (
    CHUNK_SIZE,
    BlobMissing,
    BlobReader,
    BlobStore,
    BlobWrites,
    check_name,
    file_chunks,
)
from faxline.store.models import Blob, BlobChunk, Fax


def insert_blob(
    db: Session | Connection, name: str, chunks: Iterable[bytes], now: dt.datetime
) -> int:
    """Insert blob `name` from `chunks` (any sizes; cut again at CHUNK_SIZE) through `db`,
    uncommitted; its size. At most one chunk (and one piece given) is held at a time."""
    check_name(name)
    db.execute(insert(Blob).values(name=name, size=0, chunk_size=CHUNK_SIZE, created_at=now))
    pending = bytearray()
    seq = size = 0
    for piece in chunks:
        pending += piece
        size += len(piece)
        while len(pending) >= CHUNK_SIZE:
            db.execute(
                insert(BlobChunk),
                [{"blob_name": name, "seq": seq, "data": bytes(pending[:CHUNK_SIZE])}],
            )
            del pending[:CHUNK_SIZE]
            seq += 1
    if pending:
        db.execute(insert(BlobChunk), [{"blob_name": name, "seq": seq, "data": bytes(pending)}])
    db.execute(update(Blob).where(Blob.name == name).values(size=size))
    return size


class RowReader(BlobReader):
    def __init__(self, engine: Engine, name: str, size: int, chunk_size: int) -> None:
        super().__init__(name, size)
        self._engine = engine
        self._chunk_size = chunk_size
        self._connection: Connection | None = None

    def _db(self) -> Connection:
        if self._connection is None:
            self._connection = self._engine.connect().execution_options(
                isolation_level="AUTOCOMMIT"
            )
        return self._connection

    def _piece(self, seq: int, start: int, count: int) -> bytes:
        data = self._db().scalar(
            select(func.substring(BlobChunk.data, start + 1, count, type_=LargeBinary)).where(
                BlobChunk.blob_name == self.name, BlobChunk.seq == seq
            )
        )
        if data is None:
            raise BlobMissing(f"document {self.name!r} was deleted while it was read")
        return bytes(data)

    def pread(self, size: int, offset: int) -> bytes:
        end = min(self.size, offset + max(0, size))
        out = bytearray()
        while offset < end:
            seq, within = divmod(offset, self._chunk_size)
            piece = self._piece(seq, within, min(end - offset, self._chunk_size - within))
            if not piece:
                raise BlobMissing(f"document {self.name!r} is shorter than its size")
            out += piece
            offset += len(piece)
        return bytes(out)

    def chunks(self, size: int = CHUNK_SIZE) -> Iterator[bytes]:
        if size != self._chunk_size:
            yield from super().chunks(size)
            return
        # Whole stored chunks: one query each, nothing cut.
        for seq in range((self.size + size - 1) // size):
            data = self._db().scalar(
                select(BlobChunk.data).where(BlobChunk.blob_name == self.name, BlobChunk.seq == seq)
            )
            if data is None:
                raise BlobMissing(f"document {self.name!r} was deleted while it was read")
            yield bytes(data)

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


class _RowWrites(BlobWrites):
    def __init__(self, session: Session) -> None:
        self.session = session
        self.taken: list[Path] = []

    def write(self, name: str, chunks: Iterable[bytes]) -> int:
        return insert_blob(self.session, name, chunks, utc_now())

    def move_in(self, name: str, path: Path) -> int:
        self.taken.append(path)
        return self.write(name, file_chunks(path))

    def delete(self, name: str) -> None:
        self.session.execute(delete(Blob).where(Blob.name == check_name(name)))

    def _committed(self) -> None:
        for path in self.taken:
            path.unlink(missing_ok=True)

    def _rolled_back(self) -> None:
        self._committed()


class RowBlobStore(BlobStore):
    """Blobs in the database `engine` points at; `spool` is this node's local folder."""

    def __init__(self, engine: Engine, spool: Path) -> None:
        super().__init__(spool)
        self.engine = engine

    def open(self, name: str) -> RowReader:
        with self.engine.connect() as c:
            row = c.execute(
                select(Blob.size, Blob.chunk_size).where(Blob.name == check_name(name))
            ).one_or_none()
        if row is None:
            raise BlobMissing(f"no document {name!r}")
        return RowReader(self.engine, name, row.size, row.chunk_size)

    def exists(self, name: str) -> bool:
        with self.engine.connect() as c:
            return c.scalar(select(Blob.name).where(Blob.name == check_name(name))) is not None

    def _writes(self, session: Session) -> _RowWrites:
        return _RowWrites(session)


def import_files(connection: Connection, documents_dir: Path, now: dt.datetime) -> list[Path]:
    """Copy into `blobs` every file of `documents_dir` that a fax names and that is not
    there yet (uncommitted, through `connection`); the files copied, to remove once the
    transaction has committed. The old layout's `faxes/<name>` becomes blob `<name>`;
    files no fax names (left by a crash) stay where they are."""
    if not documents_dir.is_dir():
        return []
    files = [p for p in sorted(documents_dir.iterdir()) if not p.name.startswith(".")]
    if not files:
        return []
    # Names, not rows: a few dozen bytes a fax, read once rather than a query per file.
    named = set(connection.scalars(select(Fax.document)))
    named -= set(connection.scalars(select(Blob.name)))
    copied: list[Path] = []
    for path in files:
        if path.name not in named or not path.is_file():
            continue
        name = path.name
        insert_blob(connection, name, file_chunks(path), now)
        copied.append(path)
    return copied
