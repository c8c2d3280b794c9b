"""Fax documents on disk: written to a temporary name first, renamed once the row commits."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy.orm import Session


class FileStore:
    """The data directory's `faxes/` folder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, name: str) -> Path:
        if "/" in name or name.startswith("."):
            raise ValueError(f"bad document name {name!r}")
        return self.root / name

    def stage(self, data: bytes) -> Path:
        """Write `data` under a temporary name (fsynced); `publish` or `discard` it next."""
        tmp = self.staging_path()
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        return tmp

    def staging_path(self) -> Path:
        """A fresh temporary name in this folder (for a file someone else writes)."""
        return self.root / f".tmp-{secrets.token_hex(8)}"

    def publish(self, staged: Path, name: str) -> Path:
        final = self.path(name)
        os.replace(staged, final)
        return final

    def discard(self, path: Path) -> None:
        path.unlink(missing_ok=True)

    @contextmanager
    def committing(self, session: Session, *paths: Path) -> Iterator[list[Path]]:
        """Commit `session` at the end of the block; if anything fails, roll back and remove
        `paths` and every file the block adds to the yielded list, so that rows and files
        are kept together or not at all."""
        written = list(paths)
        try:
            yield written
            session.commit()
        except BaseException:
            session.rollback()
            for path in written:
                self.discard(path)
            raise

    def sweep_staged(self) -> int:
        """Remove temporaries left by a crash between stage and publish."""
        count = 0
        for p in self.root.glob(".tmp-*"):
            p.unlink(missing_ok=True)
            count += 1
        return count
