"""Every request gets an id: the client's `X-Request-Id` when it is a sane token, else a new
one. It is in scope for every log line the request causes and echoed in the response."""

from __future__ import annotations

import re
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from faxline.metrics import context

HEADER = b"x-request-id"
# What a client may choose: short and printable, so it cannot forge log lines.
_SANE = re.compile(rb"[A-Za-z0-9._:-]{1,64}")


def request_id(scope: Scope) -> str:
    """The id of the request in `scope`, taken from its headers or made now."""
    for name, value in scope.get("headers", ()):
        if name == HEADER and _SANE.fullmatch(value):
            return str(value.decode("ascii"))
    return uuid.uuid4().hex


class RequestIds:
    """ASGI middleware: sets the request id for the request's context and its answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = request_id(scope)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != HEADER]
                message = {**message, "headers": [*headers, (HEADER, rid.encode("ascii"))]}
            await send(message)

        with context.scope(request_id=rid):
            await self.app(scope, receive, send_with_id)
