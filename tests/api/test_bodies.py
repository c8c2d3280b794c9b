"""The body guard around the app: the time limit holds only while the body is due."""

from __future__ import annotations

import asyncio

from starlette.types import Message, Receive, Scope, Send

from faxline.api.bodies import BodyGuard, RequestTimeout


def test_no_time_limit_once_the_body_has_come() -> None:
    """A streaming answer waits for "disconnect" as long as it streams (Starlette under
    ASGI 2.3): that wait must not end with the body's time limit."""
    got: list[Message] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        got.append(await receive())  # the whole body
        got.append(await receive())  # then, much later, the client leaves

    async def run() -> None:
        loop = asyncio.get_running_loop()
        left = asyncio.Event()
        messages = [{"type": "http.request", "body": b"x", "more_body": False}]

        async def receive() -> Message:
            if messages:
                return messages.pop(0)
            # Far past the body's time limit (0.01 s) on the loop's own clock.
            loop.call_at(loop.time() + 0.2, left.set)
            await left.wait()
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            pass

        guard = BodyGuard(app, limits=lambda scope: (0.01, 0))
        scope = {"type": "http", "headers": [(b"content-length", b"1")]}
        await guard(scope, receive, send)

    asyncio.run(run())
    assert [m["type"] for m in got] == ["http.request", "http.disconnect"]


def test_a_body_that_does_not_come_in_time_is_a_timeout() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()

    async def run() -> None:
        never = asyncio.Event()

        async def receive() -> Message:
            await never.wait()
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            pass

        guard = BodyGuard(app, limits=lambda scope: (0.01, 0))
        await guard({"type": "http", "headers": [(b"content-length", b"9")]}, receive, send)

    try:
        asyncio.run(run())
    except RequestTimeout as e:
        assert "within 0.01 s" in str(e)
    else:
        raise AssertionError("no RequestTimeout")
