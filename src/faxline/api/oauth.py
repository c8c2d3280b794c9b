"""`POST /oauth/token.php`: the client-credentials grant, VoipNow style;
`POST /oauth/revoke.php`: token revocation (RFC 7009)."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated
from urllib.parse import unquote

from fastapi import APIRouter, Form, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from faxline.api.state import AppState
from faxline.auth.errors import InvalidClient
from faxline.auth.tokens import issue_token, revoke_token

router = APIRouter()


def _oauth_error(code: str, description: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": code, "error_description": description}, status_code=status)


@router.post("/oauth/token.php")
async def token(
    request: Request,
    grant_type: Annotated[str | None, Form()] = None,
    client_id: Annotated[str | None, Form()] = None,
    client_secret: Annotated[str | None, Form()] = None,
    type: Annotated[str | None, Form()] = None,
    redirect_uri: Annotated[str | None, Form()] = None,
) -> JSONResponse:
    """Exchange an app's client id and secret for a bearer token.

    `type=unifiedapi` and `redirect_uri`, which the vendor's client sends, are accepted.
    """
    state: AppState = request.app.state.faxline
    if grant_type is None:
        return _oauth_error("invalid_request", "grant_type is required")
    if grant_type != "client_credentials":
        return _oauth_error("unsupported_grant_type", f"grant_type {grant_type!r} is not supported")
    if not client_id or not client_secret:
        # RFC 6749 also allows HTTP Basic for the client's credentials.
        client_id, client_secret = _basic_credentials(request) or (client_id, client_secret)
    if not client_id or not client_secret:
        return _oauth_error("invalid_request", "client_id and client_secret are required")

    client = await state.secret_checks.client(
        state.sessions, client_id, client_secret, _address(request)
    )

    def work() -> str:
        with state.sessions() as session:
            return issue_token(session, client, state.settings.token_ttl_s, state.clock())

    access_token = await run_in_threadpool(work)
    return JSONResponse(
        {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": state.settings.token_ttl_s,
        },
        headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
    )


@router.post("/oauth/revoke.php")
async def revoke(
    request: Request,
    token: Annotated[str | None, Form()] = None,
    token_type_hint: Annotated[str | None, Form()] = None,
    client_id: Annotated[str | None, Form()] = None,
    client_secret: Annotated[str | None, Form()] = None,
) -> Response:
    """Revoke one of the client's own access tokens (RFC 7009).

    200 whether or not the token existed; a token of another client is left alone.
    `token_type_hint` is accepted and needs no use: access tokens are the only kind.
    """
    state: AppState = request.app.state.faxline
    if not client_id or not client_secret:
        client_id, client_secret = _basic_credentials(request) or (client_id, client_secret)
    if not client_id or not client_secret:
        # RFC 6749 section 5.2: a request without client authentication is invalid_client.
        raise InvalidClient("client_id and client_secret are required (form or HTTP Basic)")
    if not token:
        return _oauth_error("invalid_request", "token is required")

    client = await state.secret_checks.client(
        state.sessions, client_id, client_secret, _address(request)
    )

    def work() -> bool:
        with state.sessions() as session:
            return revoke_token(session, client, token)

    await run_in_threadpool(work)
    return Response(status_code=200, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


def _address(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


def _basic_credentials(request: Request) -> tuple[str, str] | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (unquote(user), unquote(password)) if sep else None
