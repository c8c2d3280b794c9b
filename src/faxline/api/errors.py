"""UAPI error bodies, and the one place where errors of lower layers become HTTP answers."""

from __future__ import annotations

import logging
import uuid

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from faxline.api.bodies import RequestTimeout
from faxline.api.multipart import BodyError, BodyTooLarge
from faxline.auth import errors as auth
from faxline.directory.resolve import RecipientError
from faxline.documents.errors import DocumentError
from faxline.metrics import context

log = logging.getLogger("faxline.api")


class ApiError(Exception):
    """An answer in the UAPI error shape: `{"error": {"code": ..., "message": ...}}`."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers


# Errors of the layers below, by class: a subclass answers as its nearest listed base.
_MAPPED: dict[type[Exception], tuple[int, str]] = {
    auth.InvalidToken: (401, "invalid_token"),
    auth.NotFound: (404, "not_found"),
    auth.Forbidden: (403, "forbidden"),
    auth.ExtensionInvalid: (400, "extension_invalid"),
    auth.FaxNotEnabled: (403, "fx_extension_not_enabled"),
    RecipientError: (400, "fx_recipients_invalid"),
    DocumentError: (400, "fx_file_invalid"),
    BodyTooLarge: (413, "request_too_large"),
    BodyError: (400, "request_invalid"),
    RequestTimeout: (408, "request_timeout"),
}


def api_error(e: Exception) -> ApiError | None:
    """The UAPI answer to an error of a lower layer, or None if it is not one of ours."""
    if isinstance(e, ApiError):
        return e
    for cls in type(e).__mro__:
        mapped = _MAPPED.get(cls)
        if mapped is not None:
            return ApiError(*mapped, str(e))
    return None


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    extra = {"WWW-Authenticate": 'Bearer realm="faxline"'} if status == 401 else {}
    return JSONResponse(
        {"error": {"code": code, "message": message}},
        status_code=status,
        headers={**extra, **(headers or {})},
    )


_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def _allowed_methods(request: Request) -> list[str]:
    """The methods some route answers at this path (HEAD only where GET is explicit)."""
    routes = request.app.router.routes
    allowed = []
    for method in _METHODS:
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] is Match.FULL for route in routes):
            allowed.append(method)
    return allowed


def install(app: FastAPI) -> None:
    """Register the handlers that give every error the UAPI shape."""

    @app.exception_handler(auth.InvalidClient)
    async def _invalid_client(_: Request, e: auth.InvalidClient) -> JSONResponse:
        # The token endpoint answers in RFC 6749's shape, not UAPI's.
        return JSONResponse(
            {"error": "invalid_client", "error_description": str(e)}, status_code=401
        )

    async def _mapped(request: Request, e: Exception) -> JSONResponse:
        mapped = api_error(e)
        if mapped is None:
            return await _internal(request, e)
        return error_response(mapped.status, mapped.code, mapped.message, mapped.headers)

    handled: list[type[Exception]] = [ApiError, *_MAPPED]
    for cls in handled:
        app.add_exception_handler(cls, _mapped)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, e: RequestValidationError) -> JSONResponse:
        first = e.errors()[0] if e.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return error_response(400, "request_invalid", f"{where}: {first.get('msg', 'invalid')}")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, e: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(e.status_code, "request_invalid")
        headers = dict(e.headers or {})
        if e.status_code == 405:
            # Starlette names the methods of the first route that matched the path only;
            # several routes share a path here (GET and POST of a fax list).
            headers["Allow"] = ", ".join(_allowed_methods(request))
        return error_response(e.status_code, code, str(e.detail), headers)

    @app.exception_handler(Exception)
    async def _internal(request: Request, e: Exception) -> JSONResponse:
        request_id = context.current().get("request_id") or uuid.uuid4().hex[:12]
        log.exception(
            "internal error, request id %s, %s %s", request_id, request.method, request.url.path
        )
        return error_response(
            500, "internal_server_error", f"Internal error (request id {request_id})."
        )
