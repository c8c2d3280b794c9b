"""The FastAPI application: routes, error mapping, and what lives as long as the server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from faxline import __version__
from faxline.api import errors, faxes, oauth
from faxline.api.state import AppState
from faxline.config import Settings
from faxline.delivery.dispatcher import Dispatcher
from faxline.documents import ConversionLimits
from faxline.documents.pool import ConverterPool
from faxline.gateway.service import SipGateway
from faxline.store.db import make_engine, migrate, session_factory
from faxline.store.files import FileStore


def open_state(settings: Settings) -> AppState:
    """Connect, migrate, and start the converter pool."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.sqlalchemy_url)
    migrate(engine)
    files = FileStore(settings.documents_dir)
    files.sweep_staged()
    limits = ConversionLimits(
        max_pages=settings.max_pages,
        max_pixels=settings.max_pixels,
        timeout_s=settings.convert_timeout_s,
        memory_bytes=settings.convert_memory_bytes,
    )
    return AppState(
        settings=settings,
        engine=engine,
        sessions=session_factory(engine),
        files=files,
        converter=ConverterPool(workers=settings.convert_workers, limits=limits),
    )


def close_state(state: AppState) -> None:
    state.converter.close()
    state.engine.dispose()


def create_app(settings: Settings | None = None, state: AppState | None = None) -> FastAPI:
    """The HTTP application; `state` may be given (tests), else it is opened at startup."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = state is None
        current: AppState = state if state is not None else open_state(settings or Settings())
        app.state.faxline = current
        stop = asyncio.Event()
        runner = None
        gateway = None
        if owned and current.settings.sip_address is not None:
            gateway = SipGateway(current.settings, current.sessions, current.files)
            await gateway.start()
        if owned and current.settings.dispatcher:
            current.dispatcher = Dispatcher(
                current.sessions, current.files, current.settings, gateway=gateway
            )
            runner = asyncio.create_task(current.dispatcher.run(stop))
        try:
            yield
        finally:
            stop.set()
            if runner is not None:
                await runner  # drains: running calls finish or are given back
            if gateway is not None:
                await gateway.stop()
            if owned:
                close_state(current)

    app = FastAPI(
        title="faxline",
        version=__version__,
        lifespan=lifespan,
        docs_url="/docs",
        openapi_url="/openapi.json",
    )
    if state is not None:
        app.state.faxline = state
    errors.install(app)
    app.include_router(oauth.router)
    app.include_router(faxes.router)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
