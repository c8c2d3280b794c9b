"""The FastAPI application: routes and error mapping. What it serves with (`AppState`) and
how long that lives are the server's business (`faxline.server`)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from fastapi import FastAPI
from starlette.types import Scope

from faxline import __version__
from faxline.api import errors, faxes, metrics, oauth, webhooks
from faxline.api.bodies import BodyGuard
from faxline.api.request_ids import RequestIds
from faxline.api.schemas import ErrorDetail, UapiError
from faxline.api.server_timing import ServerTiming
from faxline.api.state import AppState
from faxline.config import Settings

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


def describe_errors(app: FastAPI) -> None:
    """The description says what is answered: a bad parameter is 400 in the UAPI error
    shape (FastAPI would document 422, which faxline never sends)."""
    make = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        spec = make()
        for operations in spec.get("paths", {}).values():
            for operation in operations.values():
                responses = operation.get("responses", {})
                if responses.pop("422", None) is not None and "400" not in responses:
                    responses["400"] = {
                        "description": "request_invalid: a parameter is malformed or out of range",
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/UapiError"}
                            }
                        },
                    }
        schemas = spec.setdefault("components", {}).setdefault("schemas", {})
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)
        schemas.setdefault(
            "UapiError", UapiError.model_json_schema(ref_template="#/components/schemas/{model}")
        )
        schemas.setdefault("ErrorDetail", ErrorDetail.model_json_schema())
        app.openapi_schema = spec
        return spec

    app.openapi = openapi  # type: ignore[method-assign]


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

    def body_limits(scope: Scope) -> tuple[float, int]:
        state = getattr(scope["app"].state, "faxline", None)
        if state is None:  # before the lifespan ran: the defaults
            fields = Settings.model_fields
            return fields["http_body_timeout_s"].default, fields["http_drain_bytes"].default
        return state.settings.http_body_timeout_s, state.settings.http_drain_bytes

    app.add_middleware(BodyGuard, limits=body_limits)
    app.add_middleware(RequestIds)  # outermost: even an early answer carries its id
    app.add_middleware(ServerTiming)  # and its time, the id's bookkeeping included
    app.include_router(oauth.router)
    app.include_router(faxes.router)
    app.include_router(webhooks.router)
    app.include_router(metrics.router)

    describe_errors(app)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
