"""Call placers for tests: wrappers around a real placer that fail the way nodes fail."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # testing sits below delivery: the types only
    from faxline.delivery.calls import CallOutcome, CallPlacer, LineCall


class DiesAfterCall:
    """Places each line call for real, then never returns its outcome: as if the node died
    after the call had ended but before the dispatcher recorded how it went.

    `placed` is set once a call has ended; `outcomes` holds what the calls really did.
    """

    def __init__(self, inner: CallPlacer[LineCall]) -> None:
        self.inner = inner
        self.placed = asyncio.Event()
        self.outcomes: list[CallOutcome] = []

    async def place(self, call: LineCall) -> CallOutcome:
        outcome = await self.inner.place(call)
        self.outcomes.append(outcome)
        self.placed.set()
        await asyncio.Event().wait()  # the node is gone: nobody hears the outcome
        raise AssertionError("unreachable")
