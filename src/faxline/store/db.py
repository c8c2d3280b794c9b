"""Engine creation and migrations (applied at start, on every backend)."""

from __future__ import annotations

import threading
from importlib import resources
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker


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


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision."""
    config = Config()
    config.set_main_option("script_location", str(resources.files("faxline.store") / "migrations"))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
