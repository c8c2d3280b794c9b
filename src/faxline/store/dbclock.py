"""The database's own clock, as SQL: lease times are read and set by it, not by workers.

Workers on several machines disagree about the time; the database they share is one clock.
``db_now(seconds)`` is "now plus `seconds`" computed by the database when the statement
runs: ``now()`` on PostgreSQL, ``strftime(..., 'now')`` on SQLite, written in the text form
SQLAlchemy stores datetimes in there (so that comparisons with stored values hold).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import FunctionElement

from faxline.store.models import UtcDateTime


class db_now(FunctionElement[Any]):  # lower case: it reads as the SQL function it is
    """The database's current time plus `seconds` (a float of ours, rendered literally)."""

    type = UtcDateTime()
    inherit_cache = False

    def __init__(self, seconds: float = 0.0) -> None:
        self.seconds = float(seconds)
        super().__init__()


@compiles(db_now, "postgresql")
def _postgresql(element: db_now, _compiler: Any, **_kw: Any) -> str:
    return f"(now() + interval '{element.seconds!r} seconds')"


@compiles(db_now, "sqlite")
def _sqlite(element: db_now, _compiler: Any, **_kw: Any) -> str:
    # %f is SS.SSS; SQLAlchemy stores six digits of microseconds, so pad to match.
    return f"strftime('%Y-%m-%d %H:%M:%f000', 'now', '{element.seconds:+f} seconds')"
