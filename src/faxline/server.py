"""The server assembled: database, files, converter pool, SIP gateway, dispatcher and the
HTTP application, started and stopped together, in the order they depend on each other.

`faxline serve` runs a whole :class:`Server` under uvicorn (:func:`http_app`); `faxline
worker` runs one without HTTP and without inbound calls (:func:`run_worker`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy import Engine

from faxline.api.app import create_app
from faxline.api.state import AppState
from faxline.config import Settings
from faxline.delivery.dispatcher import Dispatcher
from faxline.documents import ConversionLimits
from faxline.documents.office import OfficePool, OfficeSettings
from faxline.documents.pool import ConverterPool
from faxline.gateway.service import SipGateway
from faxline.mailin.server import MailIn
from faxline.mailin.server import start as start_smtp
from faxline.notify.sender import OutboxSender
from faxline.store import nodes
from faxline.store.blobstores import blob_store_for
from faxline.store.db import import_documents, make_engine, migrate, session_factory
from faxline.web.app import install as install_web

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
        self.outbox: OutboxSender | None = None
        self._stop = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None
        self._sender: asyncio.Task[None] | None = None
        self.smtp: asyncio.Server | None = None
        # This process's name among the nodes sharing the database: its heartbeat row, the
        # owner of its deliveries' leases and of the trunk registrations it keeps.
        self.node = nodes.NodeIdentity(
            id=f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}",
            host=socket.gethostname(),
            pid=os.getpid(),
            role="serve" if http else "worker",
            max_calls=settings.max_calls,
        )
        self._beating: asyncio.Task[None] | None = None

    async def start(self) -> AppState:
        settings = self.settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.engine = engine = make_engine(settings.sqlalchemy_url)
        await asyncio.to_thread(migrate, engine, settings.documents_dir)
        # Files of the old layout that the migration did not see (another node's):
        await asyncio.to_thread(import_documents, engine, settings.documents_dir)
        sessions = session_factory(engine)
        files = blob_store_for(engine, settings.data_dir)
        files.sweep_staged()
        converter = ConverterPool(
            workers=settings.convert_workers,
            limits=ConversionLimits(
                max_pages=settings.max_pages,
                max_pixels=settings.max_pixels,
                timeout_s=settings.convert_timeout_s,
                memory_bytes=settings.convert_memory_bytes,
            ),
            office=OfficePool(
                settings.office_instances,
                OfficeSettings(
                    python=settings.office_python,
                    timeout_s=settings.convert_timeout_s,
                    memory_bytes=settings.office_memory_bytes,
                    isolate_network=settings.office_isolate_network,
                ),
            ),
        )
        self.state = AppState(
            settings=settings, sessions=sessions, files=files, converter=converter
        )
        if self.sip_listen is not None:
            self.gateway = SipGateway(
                settings,
                sessions,
                files,
                accept_inbound=self.http,
                listen=self.sip_listen,
                node_id=self.node.id,
            )
            await self.gateway.start()
        if settings.dispatcher or not self.http:
            self.dispatcher = Dispatcher(
                sessions, files, settings, worker_id=self.node.id, trunks=self.gateway
            )
            # Events are sent by the processes that run the dispatcher (the outbox's sender).
            self.outbox = sender = OutboxSender(sessions, settings, files)
            dispatcher = self.dispatcher

            def queued() -> None:
                dispatcher.poke()
                sender.poke()

            self.state.queued = queued
            self._runner = asyncio.create_task(self.dispatcher.run(self._stop))
            self._sender = asyncio.create_task(sender.run(self._stop))
        await asyncio.to_thread(self._beat)  # `faxline status` sees the node from its start
        self._beating = asyncio.create_task(self._keep_beating())
        smtp = settings.smtp_address
        if self.http and smtp is not None:
            mailin = MailIn(
                settings,
                sessions,
                files,
                converter,
                clock=self.state.clock,
                queued=lambda: self.state.queued() if self.state is not None else None,
            )
            self.smtp = await start_smtp(mailin, *smtp)
            log.info("SMTP: faxes by mail to <number>@%s on %s:%d", settings.email_domain, *smtp)
        return self.state

    def _beat(self) -> None:
        calls = 0
        if self.dispatcher is not None:
            calls += self.dispatcher.calls_running
        if self.gateway is not None and self.http:
            calls += self.gateway.active_calls  # inbound calls it is answering
        assert self.state is not None
        with self.state.sessions() as s:
            nodes.beat(s, self.node, calls)

    async def _keep_beating(self) -> None:
        while True:
            await asyncio.sleep(self.settings.heartbeat_s)
            try:
                await asyncio.to_thread(self._beat)
            except Exception:  # the database is away for a moment: beat again next time
                log.exception("could not write the heartbeat of node %s", self.node.id)

    def request_stop(self) -> None:
        """Ask the dispatcher to drain (SIGTERM)."""
        self._stop.set()

    async def stop(self) -> None:
        """Drain the dispatcher (running calls finish or are given back), then the rest."""
        self._stop.set()
        if self.smtp is not None:
            self.smtp.close()
        if self._runner is not None:
            await self._runner
        if self._sender is not None:
            await self._sender
        if self.gateway is not None:
            await self.gateway.stop()
        if self._beating is not None:
            self._beating.cancel()
            await asyncio.gather(self._beating, return_exceptions=True)
            if self.state is not None:
                try:
                    await asyncio.to_thread(self._leave)
                except Exception:  # its row goes silent and is swept later
                    log.exception("could not remove node %s from the nodes table", self.node.id)
        if self.state is not None:
            self.state.converter.close()
        if self.engine is not None:
            self.engine.dispose()

    def _leave(self) -> None:
        assert self.state is not None
        with self.state.sessions() as s:
            nodes.leave(s, self.node.id)

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

    app = create_app(lifespan=lifespan)
    install_web(app)
    return app


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
