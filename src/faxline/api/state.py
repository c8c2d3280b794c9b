"""What the HTTP layer shares between requests: settings, database, files, converter."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.orm import Session, sessionmaker

from faxline.clock import utc_now
from faxline.config import Settings
from faxline.documents.pool import ConverterPool
from faxline.store.files import FileStore


def _nothing() -> None:
    return None


@dataclass
class AppState:
    settings: Settings
    sessions: sessionmaker[Session]
    files: FileStore
    converter: ConverterPool
    clock: Callable[[], dt.datetime] = field(default=utc_now)
    # Called when a delivery was queued, so that a dispatcher in this process looks now.
    queued: Callable[[], None] = field(default=_nothing)
