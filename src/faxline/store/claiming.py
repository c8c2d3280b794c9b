"""What the database's queues (deliveries, the outbox) share when a worker claims rows.

Both claim the same way: pick candidate rows, take each with a conditional UPDATE that
re-checks it is still free (so two workers never both get one), commit. On PostgreSQL the
candidates are first locked with FOR UPDATE SKIP LOCKED, so that a second worker passes
over the rows the first is taking instead of waiting for its commit; SQLite has one writer
at a time and needs no lock.
"""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import Select
from sqlalchemy.orm import Session

_S = TypeVar("_S", bound=Select[Any])


def skip_locked(session: Session, candidates: _S, *, of: Any = None) -> _S:
    """`candidates` locked FOR UPDATE SKIP LOCKED on PostgreSQL; as given elsewhere."""
    if session.get_bind().dialect.name != "postgresql":
        return candidates
    return candidates.with_for_update(skip_locked=True, of=of)
