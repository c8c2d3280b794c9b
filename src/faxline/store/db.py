"""Engine creation and migrations (applied at start, on every backend).

Several processes may start at once on one database (`faxline serve` and workers): the
schema's revision is checked first, which costs one query, and only a process that finds
it behind migrates, on PostgreSQL under an advisory lock, checking again once it holds the
lock (whoever held it before may have done the work). SQLite serialises the migration's
writes by its own database lock.
"""

from __future__ import annotations

import logging
import threading
from importlib import resources
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.orm import Session, sessionmaker

from faxline.clock import utc_now


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the dispatcher read while the API writes; foreign keys are off by default.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


class _SqliteWriteLock:
    """One writer at a time per process, queued in Python.

    SQLite allows one writer; a second one gets SQLITE_BUSY and its busy handler sleeps
    in steps of up to 100 ms, which under concurrent requests costs far more than the
    write itself. Taking this lock at a transaction's first write (and dropping it at
    commit or rollback) means this process never makes SQLite wait. Other processes
    (a `faxline worker`) still meet the busy timeout, rarely.
    """

    _WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")

    def __init__(self) -> None:
        self.lock = threading.Lock()

    def install(self, engine: Engine) -> None:
        event.listen(engine, "before_cursor_execute", self._before_execute)
        event.listen(engine, "commit", self._release)
        event.listen(engine, "rollback", self._release)
        # A connection handed back to the pool mid-transaction is rolled back there.
        event.listen(engine.pool, "reset", self._reset)

    def _before_execute(self, conn: Connection, _cursor: Any, statement: str, *_args: Any) -> None:
        if "faxline_write_lock" not in conn.info and statement.lstrip()[:7].upper().startswith(
            self._WRITES
        ):
            if not self.lock.acquire(timeout=60):
                raise TimeoutError("waited 60 s for the database's write lock")
            conn.info["faxline_write_lock"] = True

    def _release(self, conn: Connection) -> None:
        if conn.info.pop("faxline_write_lock", False):
            self.lock.release()

    def _reset(self, _dbapi: Any, record: Any, _state: Any = None) -> None:
        if record.info.pop("faxline_write_lock", False):
            self.lock.release()


def make_engine(url: str) -> Engine:
    """An engine for `url`; SQLite gets the pragmas a multi-process server needs."""
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=20,  # connections are cheap; reconnecting re-runs the pragmas
            max_overflow=20,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        _SqliteWriteLock().install(engine)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


log = logging.getLogger("faxline.store")

MIGRATION_LOCK = 0x6661786C696E65  # "faxline": the advisory lock's key on PostgreSQL


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(resources.files("faxline.store") / "migrations"))
    return config


def _current(connection: Connection, heads: set[str]) -> bool:
    return set(MigrationContext.configure(connection).get_current_heads()) == heads


def migrate(engine: Engine, documents_dir: Path | None = None) -> bool:
    """Bring the schema to the newest revision; True if this call migrated it.

    `documents_dir` is the data directory's `faxes/` folder: a migration that moves its
    files into the database (0008_blobs, on PostgreSQL) reads it, and the files it moved
    are removed here once its transaction has committed.
    """
    config = _config()
    if documents_dir is not None:
        config.attributes["documents_dir"] = documents_dir
    heads = set(ScriptDirectory.from_config(config).get_heads())
    with engine.connect() as connection:
        if _current(connection, heads):
            return False
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Held until this transaction ends; PostgreSQL's DDL is part of it.
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
            if _current(connection, heads):
                return False
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    log.info("database schema migrated to %s", ", ".join(sorted(heads)))
    _remove_moved(config.attributes.get("moved_files", []))
    return True


def import_documents(engine: Engine, documents_dir: Path) -> int:
    """Move the files of `documents_dir` that faxes name into the database (PostgreSQL's
    blob store), for a node whose files the migration did not see; how many. Files already
    there are skipped, so running it twice does no harm."""
    if engine.dialect.name != "postgresql":
        return 0
    from faxline.store.blobrows import import_files  # only PostgreSQL needs it

    with engine.begin() as connection:
        moved = import_files(connection, documents_dir, utc_now())
    _remove_moved(moved)
    return len(moved)


def _remove_moved(paths: list[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)
    if paths:
        log.info("moved %d documents from %s into the database", len(paths), paths[0].parent)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
