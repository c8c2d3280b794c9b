"""Blobs as files in the data directory's `faxes/` folder (the store SQLite uses).

A blob is written under a temporary name (fsynced), renamed to its final name before the
transaction commits and removed again if the commit fails; a crash in between leaves at
most a file no row names. Deletions wait for the commit. The layout is the one faxline
always had: ``faxes/<uid>.tif``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from sqlalchemy.orm import Session

from faxline.store.blobs import BlobMissing, BlobReader, BlobStore, BlobWrites, check_name


class FileReader(BlobReader):
    """An open file: a removed blob stays readable to the end through it."""

    def __init__(self, name: str, path: Path) -> None:
        try:
            self._fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            raise BlobMissing(f"no document {name!r}") from None
        super().__init__(name, os.fstat(self._fd).st_size)

    def pread(self, size: int, offset: int) -> bytes:
        return os.pread(self._fd, size, offset)

    def fileno(self) -> int:
        return self._fd

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class _FileWrites(BlobWrites):
    def __init__(self, store: FileStore) -> None:
        self.store = store
        self.published: list[Path] = []
        self.moved: list[Path] = []
        self.deleted: list[Path] = []

    def write(self, name: str, chunks: Iterable[bytes]) -> int:
        final = self.store.path(name)
        staged = self.store.spool_path()
        size = 0
        try:
            with staged.open("wb") as f:
                for piece in chunks:
                    f.write(piece)
                    size += len(piece)
                f.flush()
                os.fsync(f.fileno())
            self._publish(staged, final)
        finally:
            staged.unlink(missing_ok=True)
        return size

    def move_in(self, name: str, path: Path) -> int:
        final = self.store.path(name)
        self.moved.append(path)
        if path.parent.resolve() == self.store.root.resolve():
            size = path.stat().st_size
            self._publish(path, final)  # a file of the spool: a rename, no copy
            return size
        with path.open("rb") as f:
            return self.write(name, iter(lambda: f.read(256 * 1024), b""))

    def _publish(self, staged: Path, final: Path) -> None:
        if final.exists():
            raise FileExistsError(f"document {final.name!r} exists already")
        os.replace(staged, final)
        self.published.append(final)

    def delete(self, name: str) -> None:
        self.deleted.append(self.store.path(name))

    def _committed(self) -> None:
        for path in self.deleted + self.moved:
            path.unlink(missing_ok=True)

    def _rolled_back(self) -> None:
        for path in self.published + self.moved:
            path.unlink(missing_ok=True)


class FileStore(BlobStore):
    """The data directory's `faxes/` folder; it is its own spool (renames stay in it)."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.root = root

    def path(self, name: str) -> Path:
        return self.root / check_name(name)

    def open(self, name: str) -> FileReader:
        return FileReader(name, self.path(name))

    def exists(self, name: str) -> bool:
        return self.path(name).exists()

    def file_path(self, name: str) -> Path | None:
        return self.path(name)

    def local_copy(self, name: str) -> Path:
        # The blob is a local file already: no copy (release_copy leaves it alone).
        path = self.path(name)
        if not path.exists():
            raise BlobMissing(f"no document {name!r}")
        return path

    def _writes(self, session: Session) -> _FileWrites:
        return _FileWrites(self)
