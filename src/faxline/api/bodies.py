"""Request bodies around the app: a time limit on reading them, and the unread rest of one
drained after an early answer.

Clients such as Python's urllib and requests send the whole body before they read the
answer. When faxline answers first (401 before the upload, 413 from Content-Length) and
the server then closes the connection with unread bytes in flight, the kernel resets it and
the client sees a broken pipe instead of the answer. So the answer is written, the rest of
the body is read and dropped (up to a bound, in constant memory), and only then is the
response completed (with `Connection: close`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class RequestTimeout(Exception):
    """The client did not send its body within the time limit (408)."""


def _expects_continue(scope: Scope) -> bool:
    return any(
        name == b"expect" and value.lower() == b"100-continue"
        for name, value in scope.get("headers", ())
    )


def _has_body(scope: Scope) -> bool:
    for name, value in scope.get("headers", ()):
        if name == b"transfer-encoding":
            return True
        if name == b"content-length":
            return value.strip() not in (b"0", b"")
    return False


# (body time limit in seconds, bytes to drain) for a request; read per request because
# the settings arrive with the app's lifespan, after the middleware is made.
Limits = Callable[[Scope], tuple[float, int]]


class BodyGuard:
    """ASGI middleware: a time limit for the whole body, and a drain after answering."""

    def __init__(self, app: ASGIApp, *, limits: Limits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body_timeout_s, drain_bytes = self.limits(scope)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + body_timeout_s
        received_all = not _has_body(scope)
        timed_out = False
        early = False
        # A client that waits for "100 Continue" sends no body after a final answer (and
        # asking for the body now would write the 100 after that answer).
        waiting_client = _expects_continue(scope)

        async def timed_receive() -> Message:
            nonlocal received_all, timed_out, waiting_client
            waiting_client = False
            if received_all:
                # Only "disconnect" can come now (a streaming answer listens for it as long
                # as it streams): no time limit.
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                timed_out = True
                raise RequestTimeout(
                    f"the request body did not arrive within {body_timeout_s:g} s"
                ) from None
            if message["type"] == "http.disconnect" or not message.get("more_body", False):
                received_all = True
            return message

        async def drain() -> None:
            dropped = 0
            while not received_all and dropped <= drain_bytes:
                try:
                    message = await timed_receive()
                except RequestTimeout:
                    return
                dropped += len(message.get("body", b""))

        async def guarded_send(message: Message) -> None:
            nonlocal early
            if message["type"] == "http.response.start" and not received_all:
                early = True
                headers: list[Any] = [
                    (k, v) for k, v in message.get("headers", ()) if k.lower() != b"connection"
                ]
                message = {**message, "headers": [*headers, (b"connection", b"close")]}
            elif (
                message["type"] == "http.response.body"
                and early
                and not message.get("more_body", False)
            ):
                await send({**message, "more_body": True})
                if not timed_out and not waiting_client:
                    await drain()
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            await send(message)

        await self.app(scope, timed_receive, guarded_send)
