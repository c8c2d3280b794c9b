"""A clock that moves only when told: for tests of leases, retries and token expiry."""

from __future__ import annotations

import datetime as dt


class ManualClock:
    """Call it for the time; `advance` moves it on."""

    def __init__(self, start: dt.datetime | None = None) -> None:
        self.now = start or dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)
