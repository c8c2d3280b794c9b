"""The server assembled: database, files, converter pool, SIP gateway, dispatcher and the
HTTP application, started and stopped together, in the order they depend on each other.

`faxline serve` runs a whole :class:`Server` under uvicorn (:func:`http_app`); `faxline
worker` runs one without HTTP and without inbound calls (:func:`run_worker`).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy import Engine

from faxline.api.app import create_app
from faxline.api.state import AppState
from faxline.config import Settings
from faxline.delivery.dispatcher import Dispatcher
from faxline.documents import ConversionLimits
from faxline.documents.pool import ConverterPool
from faxline.gateway.service import SipGateway
from faxline.store.db import make_engine, migrate, session_factory
from faxline.store.files import FileStore

log = logging.getLogger("faxline.server")


class Server:
    """One faxline process: what it runs depends on the settings and on `http`."""

    def __init__(
        self,
        settings: Settings,
        *,
        http: bool,
        sip_listen: tuple[str, int] | None,
    ) -> None:
        self.settings = settings
        self.http = http
        self.sip_listen = sip_listen
        self.engine: Engine | None = None
        self.state: AppState | None = None
        self.gateway: SipGateway | None = None
        self.dispatcher: Dispatcher | None = None
        self._stop = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None

    async def start(self) -> AppState:
        settings = self.settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.engine = engine = make_engine(settings.sqlalchemy_url)
        await asyncio.to_thread(migrate, engine)
        sessions = session_factory(engine)
        files = FileStore(settings.documents_dir)
        files.sweep_staged()
        converter = ConverterPool(
            workers=settings.convert_workers,
            limits=ConversionLimits(
                max_pages=settings.max_pages,
                max_pixels=settings.max_pixels,
                timeout_s=settings.convert_timeout_s,
                memory_bytes=settings.convert_memory_bytes,
            ),
        )
        self.state = AppState(
            settings=settings, sessions=sessions, files=files, converter=converter
        )
        if self.sip_listen is not None:
            self.gateway = SipGateway(
                settings, sessions, files, accept_inbound=self.http, listen=self.sip_listen
            )
            await self.gateway.start()
        if settings.dispatcher or not self.http:
            self.dispatcher = Dispatcher(sessions, files, settings, trunks=self.gateway)
            self.state.queued = self.dispatcher.poke
            self._runner = asyncio.create_task(self.dispatcher.run(self._stop))
        return self.state

    def request_stop(self) -> None:
        """Ask the dispatcher to drain (SIGTERM)."""
        self._stop.set()

    async def stop(self) -> None:
        """Drain the dispatcher (running calls finish or are given back), then the rest."""
        self._stop.set()
        if self._runner is not None:
            await self._runner
        if self.gateway is not None:
            await self.gateway.stop()
        if self.state is not None:
            self.state.converter.close()
        if self.engine is not None:
            self.engine.dispose()

    async def wait(self) -> None:
        """Until the dispatcher has stopped (SIGTERM to a worker)."""
        if self._runner is not None:
            await self._runner


def http_app(settings: Settings) -> FastAPI:
    """The HTTP application of a whole server, which starts and stops with it."""
    server = Server(settings, http=True, sip_listen=settings.sip_address)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.faxline = await server.start()
        try:
            yield
        finally:
            await server.stop()

    return create_app(lifespan=lifespan)


def run_worker(settings: Settings, sip_listen: tuple[str, int] | None) -> None:
    """The dispatcher alone (with outbound SIP unless `sip_listen` is None), until SIGTERM."""

    async def run() -> None:
        server = Server(settings, http=False, sip_listen=sip_listen)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, server.request_stop)
        await server.start()
        try:
            await server.wait()
        finally:
            await server.stop()

    asyncio.run(run())
