"""`Server-Timing: app;dur=<ms>` on every answer: the time from the moment the application
got the request to the moment its answer's headers went out, as browsers' developer tools
and `bench/web` read it (W3C Server Timing). Waits inside the server (the event loop, the
thread pool, the database) are in it; the client's own time and the network are not."""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = b"server-timing"


class ServerTiming:
    """ASGI middleware adding the header to every HTTP answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()

        async def send_timed(message: Message) -> None:
            if message["type"] == "http.response.start":
                ms = (time.perf_counter() - started) * 1000
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != HEADER]
                timing = f"app;dur={ms:.2f}".encode("ascii")
                message = {**message, "headers": [*headers, (HEADER, timing)]}
            await send(message)

        await self.app(scope, receive, send_timed)
