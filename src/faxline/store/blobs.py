"""Where fax documents live: the blob store interface, and the choice of its backend.

A fax's TIFF (sent or received) is a *blob*: written once, under a unique name, in the
same transaction as the rows that name it, read many times, deleted with its fax. Two
stores implement this interface:

- :class:`faxline.store.files.FileStore` keeps each blob as a file in the data
  directory's ``faxes/`` folder (SQLite, and the layout faxline always had);
- :class:`faxline.store.blobrows.RowBlobStore` keeps them in PostgreSQL as rows of
  ``blob_chunks`` (256 KiB each), so that every node sharing the database reads every fax.

Both stream: writes take an iterable of chunks (or a local file, read a chunk at a time),
reads hand out chunks or ``pread`` ranges, so a document is never whole in memory. What
needs a real file (SpanDSP sends from a path, libtiff renders pages from one) asks for a
:meth:`BlobStore.local_copy`, a node-local file removed again once it is released.
"""

from __future__ import annotations

import secrets
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

from sqlalchemy.orm import Session

from faxline.documents.pdfexport import fax_pdf

CHUNK_SIZE = 256 * 1024
SPOOL_PREFIX = ".tmp-"


class BlobMissing(FileNotFoundError):
    """No blob of that name (never written, not yet committed, or deleted)."""


def check_name(name: str) -> str:
    """A blob's name is a plain file name: it names a file in the local layout."""
    if not name or "/" in name or "\\" in name or name.startswith(".") or "\x00" in name:
        raise ValueError(f"bad document name {name!r}")
    return name


def chunked(data: bytes | memoryview, size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """`data` cut into pieces of `size` bytes (the last one shorter)."""
    view = memoryview(data)
    for start in range(0, len(view), size):
        yield bytes(view[start : start + size])


def file_chunks(path: Path, size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """A local file's bytes, `size` at a time."""
    with path.open("rb") as f:
        while piece := f.read(size):
            yield piece


class BlobReader(ABC):
    """An open blob: its size, random access by offset, and sequential chunks."""

    def __init__(self, name: str, size: int) -> None:
        self.name = name
        self.size = size

    @abstractmethod
    def pread(self, size: int, offset: int) -> bytes:
        """Up to `size` bytes from `offset` (fewer only at the end of the blob)."""

    def chunks(self, size: int = CHUNK_SIZE) -> Iterator[bytes]:
        """The whole blob, `size` bytes at a time."""
        for offset in range(0, self.size, size):
            yield self.pread(size, offset)

    def close(self) -> None:  # noqa: B027 - a reader may hold nothing to release
        """Release what the reader holds (a file descriptor)."""

    def __enter__(self) -> BlobReader:
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        self.close()


class BlobWrites(ABC):
    """The blob changes of one database transaction: they take effect with its commit and
    leave nothing behind if it rolls back."""

    @abstractmethod
    def write(self, name: str, chunks: Iterable[bytes]) -> int:
        """Store `chunks` as blob `name`; its size."""

    @abstractmethod
    def move_in(self, name: str, path: Path) -> int:
        """Store the local file `path` as blob `name` and take it over: once the
        transaction ends (either way), `path` is gone. Its size."""

    @abstractmethod
    def delete(self, name: str) -> None:
        """Remove blob `name` (if it exists) with the commit."""

    @abstractmethod
    def _committed(self) -> None:
        """The transaction committed: finish what waits for it."""

    @abstractmethod
    def _rolled_back(self) -> None:
        """The transaction rolled back: undo what was done ahead of it."""


class BlobStore(ABC):
    """Blobs by name, and the node-local spool where files that are not blobs yet (a fax
    being received) or not any more (a copy for SpanDSP) are kept."""

    def __init__(self, spool: Path) -> None:
        self.spool = spool
        self.spool.mkdir(parents=True, exist_ok=True)

    @abstractmethod
    def open(self, name: str) -> BlobReader:
        """Open blob `name` for reading; :class:`BlobMissing` if there is none."""

    @abstractmethod
    def exists(self, name: str) -> bool: ...

    @abstractmethod
    def _writes(self, session: Session) -> BlobWrites: ...

    def file_path(self, name: str) -> Path | None:
        """The blob's own file where blobs are files (so it can be served as one)."""
        return None

    @contextmanager
    def transaction(self, session: Session) -> Iterator[BlobWrites]:
        """Commit `session` at the end of the block, with the blob changes made through the
        yielded object; if anything fails, roll both back and re-raise."""
        writes = self._writes(session)
        try:
            yield writes
            session.commit()
        except BaseException:
            session.rollback()
            writes._rolled_back()
            raise
        writes._committed()

    def spool_path(self) -> Path:
        """A fresh node-local temporary name (for a file someone else writes)."""
        return self.spool / f"{SPOOL_PREFIX}{secrets.token_hex(8)}"

    def discard(self, path: Path) -> None:
        """Remove a spooled file (gone already is fine)."""
        path.unlink(missing_ok=True)

    def local_copy(self, name: str) -> Path:
        """A node-local file holding blob `name`, for what must read a path; hand it back
        with :meth:`release_copy`. Copied a chunk at a time."""
        path = self.spool_path()
        try:
            with self.open(name) as reader, path.open("wb") as out:
                for piece in reader.chunks():
                    out.write(piece)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return path

    def release_copy(self, path: Path) -> None:
        if path.parent == self.spool and path.name.startswith(SPOOL_PREFIX):
            path.unlink(missing_ok=True)

    @contextmanager
    def copied(self, name: str) -> Iterator[Path]:
        path = self.local_copy(name)
        try:
            yield path
        finally:
            self.release_copy(path)

    def sweep_staged(self) -> int:
        """Remove spooled files left by a crash (at start, before anything is spooled)."""
        count = 0
        for p in self.spool.glob(f"{SPOOL_PREFIX}*"):
            p.unlink(missing_ok=True)
            count += 1
        return count


def document_pdf(blobs: BlobStore, name: str) -> Iterator[bytes]:
    """The PDF of stored fax TIFF `name`, about a page a chunk, read by offset from the
    store (see documents.pdfexport): opened on the first ``next()``, so a missing document
    raises :class:`BlobMissing` and a malformed one PdfExportError before any byte."""
    with blobs.open(name) as reader:
        yield from fax_pdf(reader, lambda: blobs.copied(name))
