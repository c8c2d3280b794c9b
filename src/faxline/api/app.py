"""The FastAPI application: routes and error mapping. What it serves with (`AppState`) and
how long that lives are the server's business (`faxline.server`)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from fastapi import FastAPI

from faxline import __version__
from faxline.api import errors, faxes, oauth
from faxline.api.state import AppState

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


def create_app(state: AppState | None = None, *, lifespan: Lifespan | None = None) -> FastAPI:
    """The HTTP application, serving with `state`, or with what `lifespan` puts into
    `app.state.faxline` before the first request."""
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
