"""A small world for the dispatcher: tenants, a simulator route, faxes to queue."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select

from faxline.config import Settings
from faxline.delivery.dispatcher import Dispatcher
from faxline.directory.provision import apply, parse
from faxline.documents import Resolution
from faxline.documents.faxtiff import write_fax_tiff
from faxline.store import faxes as fax_store
from faxline.store.blobs import BlobStore
from faxline.store.blobstores import blob_store_for
from faxline.store.db import make_engine, migrate, session_factory
from faxline.store.models import Delivery, Extension, Fax, User
from faxline.testing.clock import ManualClock

WORLD: dict[str, Any] = {
    "organizations": [{"code": "0003", "name": "Acme"}],
    "users": [
        {"id": "alice", "organization": "0003"},
        {"id": "bob", "organization": "0003"},
    ],
    "extensions": [
        {
            "number": "0003*210",
            "owner": "alice",
            "fax": True,
            "callerId": "+15550100210",
            "header": "Acme Ltd",
        },
        {"number": "0003*211", "owner": "bob", "fax": True, "callerId": "+15550100211"},
        {"number": "0003*212", "owner": "bob", "fax": False},
    ],
    "routes": [
        {
            "name": "sim",
            "type": "simulator",
            "maxCalls": 2,
            "numbers": {
                "5550001": {"behaviour": "answer"},
                "5550002": {"behaviour": "busy"},
                "5550003": {"behaviour": "no_answer"},
                "5550004": {"behaviour": "hangup_after_page", "page": 1},
                "5550005": {"behaviour": "refuse_fine"},
                "5550006": {"behaviour": "answer", "busyAttempts": 1},
                "5550007": {"behaviour": "lossy", "ecm": False, "loss": 0.01, "seed": 1},
                "5550008": {"behaviour": "refuse_superfine"},
            },
        }
    ],
}


def sample_pages(count: int = 3, rows: int = 600) -> list[np.ndarray]:
    """Pages with real content, different on each page, so comparisons mean something."""
    rng = np.random.default_rng(7)
    pages = []
    for n in range(count):
        page = np.zeros((rows, 1728), dtype=bool)
        for _ in range(30):
            y, x = rng.integers(0, rows - 20), rng.integers(0, 1700)
            page[y : y + rng.integers(2, 20), x : x + rng.integers(5, 28)] = True
        page[50 + n * 40 : 60 + n * 40, 100:1600] = True
        pages.append(page)
    return pages


@dataclass
class World:
    settings: Settings
    sessions: Any
    files: BlobStore
    clock: ManualClock
    pages: list[np.ndarray]

    def queue(
        self,
        recipients: list[str],
        sender: str = "0003*210",
        resolution: Resolution = Resolution.FINE,
    ) -> int:
        with self.sessions() as s:
            ext = s.scalar(select(Extension).where(Extension.number == sender))
            user = s.scalar(select(User).where(User.id == ext.owner_id))
            fax = fax_store.create_outgoing(
                s,
                self.files,
                extension_id=ext.id,
                user_id=user.id,
                recipients=[(r, r) for r in recipients],
                documents=[],
                tiff=write_fax_tiff(self.pages, resolution),
                pages=len(self.pages),
                resolution=resolution.value,
                now=self.clock(),
            )
            return fax.id

    def dispatcher(self, **overrides: Any) -> Dispatcher:
        settings = self.settings.model_copy(update=overrides) if overrides else self.settings
        return Dispatcher(self.sessions, self.files, settings, clock=self.clock)

    def run(self, dispatcher: Dispatcher) -> None:
        """Run everything that is due now, until nothing more is."""
        asyncio.run(self.deliver(dispatcher))

    @staticmethod
    async def deliver(dispatcher: Dispatcher) -> None:
        """`run` inside a running event loop."""
        try:
            while await dispatcher.run_once():
                await dispatcher.idle()
        finally:
            await dispatcher.drain()

    def deliveries(self, fax_id: int) -> list[Delivery]:
        with self.sessions() as s:
            return list(
                s.scalars(select(Delivery).where(Delivery.fax_id == fax_id).order_by(Delivery.id))
            )

    def fax(self, fax_id: int) -> Fax:
        with self.sessions() as s:
            fax = fax_store.get_for_extension(s, s.get(Fax, fax_id).extension_id, fax_id)
            assert fax is not None
            fax.attempts = [list(d.attempt_log) for d in fax.deliveries]  # type: ignore[attr-defined]
            return fax

    def inbox(self, number: str) -> list[Fax]:
        with self.sessions() as s:
            ext = s.scalar(select(Extension).where(Extension.number == number))
            return list(
                s.scalars(select(Fax).where(Fax.extension_id == ext.id, Fax.direction == "in"))
            )


@pytest.fixture
def make_world(database_url: str, tmp_path: Path) -> Iterator[Callable[..., World]]:
    engines = []

    def make(**overrides: Any) -> World:
        settings = Settings(
            data_dir=tmp_path / "data",
            database_url=database_url,
            max_calls=2,
            **overrides,
        )
        engine = make_engine(settings.sqlalchemy_url)
        engines.append(engine)
        migrate(engine)
        sessions = session_factory(engine)
        with sessions() as s:
            apply(s, parse(WORLD))
            s.commit()
        return World(
            settings,
            sessions,
            blob_store_for(engine, settings.data_dir),
            ManualClock(),
            sample_pages(),
        )

    yield make
    for engine in engines:
        engine.dispose()


@pytest.fixture
def world(make_world: Callable[..., World]) -> World:
    return make_world()
