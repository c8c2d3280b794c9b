"""What the HTTP layer shares between requests: settings, database, files, converter."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from faxline.clock import utc_now
from faxline.config import Settings
from faxline.delivery.dispatcher import Dispatcher
from faxline.documents.pool import ConverterPool
from faxline.store.files import FileStore


@dataclass
class AppState:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    files: FileStore
    converter: ConverterPool
    clock: Callable[[], dt.datetime] = field(default=utc_now)
    dispatcher: Dispatcher | None = None
