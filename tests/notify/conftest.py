"""Tenants with webhook endpoints, faxes to queue, and the dispatcher with the webhook
sender running in a thread of their own, as in `faxline serve`."""

from __future__ import annotations

import asyncio
import base64
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select

from faxline.clock import utc_now
from faxline.config import Settings
from faxline.delivery.dispatcher import Dispatcher
from faxline.directory.provision import apply, parse
from faxline.documents import ConversionLimits, Resolution
from faxline.documents.faxtiff import write_fax_tiff
from faxline.documents.pool import ConverterPool
from faxline.mailin.server import MailIn
from faxline.mailin.server import start as start_smtp
from faxline.notify.sender import OutboxSender
from faxline.store import faxes as fax_store
from faxline.store.blobs import BlobStore
from faxline.store.blobstores import blob_store_for
from faxline.store.db import make_engine, migrate, session_factory
from faxline.store.models import Delivery, Extension, User
from tests.notify.receiver import Receiver


def secret(n: int) -> str:
    return "whsec_" + base64.b64encode(bytes([n]) * 32).decode()


def tenants(
    hooks: dict[str, list[dict[str, Any]]], emails: dict[str, list[str]] | None = None
) -> dict[str, Any]:
    """Two organizations; `hooks` gives each user's app its webhooks, `emails` some
    extensions their addresses."""
    emails = emails or {}
    users = [
        ("alice", "0003", "user"),
        ("bob", "0003", "user"),
        ("olga", "0003", "organization"),
        ("carol", "0004", "user"),
    ]
    return {
        "organizations": [{"code": "0003", "name": "Acme"}, {"code": "0004", "name": "Beta"}],
        "users": [
            {
                "id": u,
                "organization": o,
                "role": r,
                "password": f"pw-{u}-secret",
                "email": f"{u}@acme.test",
            }
            for u, o, r in users
        ],
        "extensions": [
            {
                "number": "0003*210",
                "owner": "alice",
                "fax": True,
                "callerId": "+15550100210",
                "email": emails.get("0003*210", []),
            },
            {
                "number": "0003*211",
                "owner": "bob",
                "fax": True,
                "email": emails.get("0003*211", []),
            },
            {"number": "0004*210", "owner": "carol", "fax": True},
        ],
        "apps": [
            {
                "clientId": f"{u}-app",
                "clientSecret": f"s3cret-{u}",
                "owner": u,
                "webhooks": hooks.get(u, []),
            }
            for u, _, _ in users
        ],
    }


def page() -> np.ndarray:
    pixels = np.zeros((200, 1728), dtype=bool)
    pixels[50:60, 100:1600] = True
    return pixels


@dataclass
class World:
    settings: Settings
    sessions: Any
    files: BlobStore

    def queue(self, recipients: list[str], sender: str = "0003*210") -> int:
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
                tiff=write_fax_tiff([page()], Resolution.FINE),
                pages=1,
                resolution="fine",
                now=utc_now(),
            )
            return fax.id

    def statuses(self) -> list[str]:
        with self.sessions() as s:
            return list(s.scalars(select(Delivery.status).order_by(Delivery.id)))


class Running:
    """The dispatcher, the outbox's sender and (with `smtp`) the SMTP server on an event
    loop in a thread, as `faxline serve` runs them, until closed."""

    def __init__(self, world: World, smtp: tuple[str, int] | None = None) -> None:
        self.world = world
        self.smtp = smtp
        self._ready = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)
        self._thread.start()
        self._ready.wait(30)

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        w = self.world
        dispatcher = Dispatcher(w.sessions, w.files, w.settings)
        sender = OutboxSender(w.sessions, w.settings, w.files)
        server = None
        converter = ConverterPool(workers=1, limits=ConversionLimits(max_pages=20))
        if self.smtp is not None:

            def queued() -> None:
                dispatcher.poke()
                sender.poke()

            mailin = MailIn(
                w.settings, w.sessions, w.files, converter, clock=utc_now, queued=queued
            )
            server = await start_smtp(mailin, *self.smtp)
        self._ready.set()
        try:
            await asyncio.gather(dispatcher.run(self._stop), sender.run(self._stop))
        finally:
            if server is not None:
                server.close()
                await server.wait_closed()
            converter.close()

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(60)


@pytest.fixture
def make_world(database_url: str, tmp_path: Path) -> Iterator[Callable[..., World]]:
    engines = []

    def make(
        hooks: dict[str, list[dict[str, Any]]],
        emails: dict[str, list[str]] | None = None,
        **overrides: Any,
    ) -> World:
        given: dict[str, Any] = {
            "max_calls": 2,
            "poll_interval_s": 0.05,
            "notify_poll_interval_s": 0.05,
            "webhook_retry_schedule_s": (0.05, 0.05, 0.05),
            "webhook_timeout_s": 2.0,
            "drain_timeout_s": 1.0,
        }
        given.update(overrides)
        settings = Settings(data_dir=tmp_path / "data", database_url=database_url, **given)
        engine = make_engine(settings.sqlalchemy_url)
        engines.append(engine)
        migrate(engine)
        sessions = session_factory(engine)
        with sessions() as s:
            apply(s, parse(tenants(hooks, emails)))
            s.commit()
        return World(settings, sessions, blob_store_for(engine, settings.data_dir))

    yield make
    for engine in engines:
        engine.dispose()


@pytest.fixture
def receivers() -> Iterator[Callable[..., Receiver]]:
    made: list[Receiver] = []

    def make(**kwargs: Any) -> Receiver:
        r = Receiver(**kwargs)
        made.append(r)
        return r

    yield make
    for r in made:
        r.close()


@pytest.fixture
def running() -> Iterator[Callable[..., Running]]:
    made: list[Running] = []

    def start(world: World, smtp: tuple[str, int] | None = None) -> Running:
        r = Running(world, smtp)
        made.append(r)
        return r

    yield start
    for r in made:
        r.close()
