"""Checking an app's client id and secret (token and revoke endpoints) without letting a
flood of wrong secrets take the server's memory and CPU.

In order: a secret that verified recently against the app's current hash passes at once
(no argon2; a flood on the same client id does not lock its owner out); else a client id
or source address past its wrong secrets per minute gets 429; else the check waits for one
of a few slots (429 if none frees in time) and runs argon2 in a thread.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable

from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from faxline.api.errors import ApiError
from faxline.auth.secret_cache import VerifiedSecrets
from faxline.auth.throttle import FailureLimiter
from faxline.auth.tokens import Client, check_secret, find_client, rehash_if_needed
from faxline.config import Settings


def too_many_requests(message: str, retry_after_s: float) -> ApiError:
    seconds = max(1, math.ceil(retry_after_s))
    return ApiError(429, "too_many_requests", message, headers={"Retry-After": str(seconds)})


class SecretChecks:
    """One per server process; `now` is a monotonic clock in seconds."""

    def __init__(self, settings: Settings, now: Callable[[], float] = time.monotonic) -> None:
        self.limiter = FailureLimiter(
            settings.token_failures_per_minute, window_s=60.0, max_keys=10_000
        )
        self.cache = VerifiedSecrets(settings.token_cache_s, settings.token_cache_size)
        self.slots_at_once = settings.token_checks_at_once
        self.wait_s = settings.token_check_wait_s
        self.now = now
        self._slots: asyncio.Semaphore | None = None

    def _throttle(self, keys: tuple[str, ...]) -> None:
        wait = self.limiter.retry_after(keys, self.now())
        if wait is not None:
            raise too_many_requests("too many wrong secrets; try again later", wait)

    async def client(
        self, sessions: sessionmaker[Session], client_id: str, secret: str, address: str
    ) -> Client:
        """The app whose secret this is, InvalidClient, or a 429 ApiError."""

        def lookup() -> Client | None:
            with sessions() as session:
                return find_client(session, client_id)

        found = await run_in_threadpool(lookup)
        if found is not None and self.cache.knows(client_id, secret, found.secret_hash, self.now()):
            return found
        # Bounded keys: an attacker's megabyte-long client ids must not be kept whole.
        keys = (f"client:{client_id[:256]}", f"address:{address}")
        self._throttle(keys)
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.slots_at_once)
        try:
            async with asyncio.timeout(self.wait_s):
                await self._slots.acquire()
        except TimeoutError:
            raise too_many_requests("too many secret checks at once; try again", 1) from None
        try:
            # Counted while this one waited, and counted as a failure until it passes (with
            # no await in between): the limit holds for checks that run at once too.
            self._throttle(keys)
            counted = self.now()
            self.limiter.failed(keys, counted)
            client = await run_in_threadpool(check_secret, found, secret)
            self.limiter.forgive(keys, counted)

            def rehash() -> None:
                with sessions() as session:
                    rehash_if_needed(session, client, secret)

            await run_in_threadpool(rehash)
        finally:
            self._slots.release()
        self.cache.remember(client_id, secret, client.secret_hash, self.now())
        return client
