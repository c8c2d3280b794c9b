"""Cookies, CSRF and throttling of the sign-in form: the web's edge, shared by its routes."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from faxline.api.state import AppState
from faxline.auth.throttle import FailureLimiter
from faxline.auth.web_sessions import SignedIn, signed_in

COOKIE = "faxline_session"
# Like the token endpoint: a few failures per user name and per address, then a pause.
USER_FAILURES, ADDRESS_FAILURES, WINDOW_S = 5, 20, 300.0


@dataclass
class SignInThrottle:
    """Per-process failure counts of the sign-in form (time is the caller's)."""

    users: FailureLimiter = field(
        default_factory=lambda: FailureLimiter(USER_FAILURES, window_s=WINDOW_S)
    )
    addresses: FailureLimiter = field(
        default_factory=lambda: FailureLimiter(ADDRESS_FAILURES, window_s=WINDOW_S)
    )
    clock: object = field(default=time.monotonic)

    def now(self) -> float:
        value: float = self.clock()  # type: ignore[operator]
        return value

    def blocked(self, username: str, address: str) -> bool:
        now = self.now()
        return (
            self.users.retry_after((username,), now) is not None
            or self.addresses.retry_after((address,), now) is not None
        )

    def failed(self, username: str, address: str) -> None:
        now = self.now()
        self.users.failed((username,), now)
        self.addresses.failed((address,), now)

    def succeeded(self, username: str) -> None:
        self.users.forget((username,))


def state_of(request: Request) -> AppState:
    state: AppState = request.app.state.faxline
    return state


def throttle_of(request: Request) -> SignInThrottle:
    throttle: SignInThrottle | None = getattr(request.app.state, "web_throttle", None)
    if throttle is None:
        throttle = request.app.state.web_throttle = SignInThrottle()
    return throttle


def address_of(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


async def current(request: Request) -> SignedIn | None:
    """The person signed in with this request's cookie, if any."""
    state = state_of(request)
    token = request.cookies.get(COOKIE)
    if not token:
        return None

    def work() -> SignedIn | None:
        with state.sessions() as session:
            return signed_in(session, token, state.clock())

    return await run_in_threadpool(work)


def secure_cookies(request: Request) -> bool:
    """Secure under TLS (served directly, or behind a proxy that says so)."""
    return (
        request.url.scheme == "https"
        or request.headers.get("x-forwarded-proto", "").lower() == "https"
    )
