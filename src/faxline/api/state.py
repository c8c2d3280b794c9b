"""What the HTTP layer shares between requests: settings, database, files, converter."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.orm import Session, sessionmaker

from faxline.api.client_auth import SecretChecks
from faxline.clock import utc_now
from faxline.config import Settings
from faxline.documents.pool import ConverterPool
from faxline.store.blobs import BlobStore


def _nothing() -> None:
    return None


@dataclass
class AppState:
    settings: Settings
    sessions: sessionmaker[Session]
    files: BlobStore
    converter: ConverterPool
    clock: Callable[[], dt.datetime] = field(default=utc_now)
    # Called when a delivery was queued, so that a dispatcher in this process looks now.
    queued: Callable[[], None] = field(default=_nothing)
    # Throttled, cached client secret checks (token and revoke endpoints).
    secret_checks: SecretChecks = field(init=False)

    def __post_init__(self) -> None:
        self.secret_checks = SecretChecks(self.settings)
