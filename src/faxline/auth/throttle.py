"""Wrong secrets counted per key (a client id, a source address) over a sliding minute.

Sans-I/O: time is a parameter. Memory is bounded: at most `limit` times per key and at
most `max_keys` keys (the least recently failed go first).
"""

from __future__ import annotations

from collections import OrderedDict, deque


class FailureLimiter:
    """From the `limit + 1`-th failure within `window_s` on one key, that key is blocked
    until its oldest counted failure is `window_s` old."""

    def __init__(self, limit: int, window_s: float = 60.0, max_keys: int = 100_000) -> None:
        self.limit = limit
        self.window_s = window_s
        self.max_keys = max_keys
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def retry_after(self, keys: tuple[str, ...], now: float) -> float | None:
        """Seconds until the most blocked of `keys` may try again, or None if none is."""
        waits = []
        for key in keys:
            times = self._failures.get(key)
            if times is None:
                continue
            while times and times[0] <= now - self.window_s:
                times.popleft()
            if len(times) >= self.limit:
                waits.append(times[0] + self.window_s - now)
        return max(waits) if waits else None

    def failed(self, keys: tuple[str, ...], now: float) -> None:
        for key in keys:
            times = self._failures.pop(key, None)
            if times is None:
                times = deque(maxlen=self.limit)
            times.append(now)
            self._failures[key] = times
        while len(self._failures) > self.max_keys:
            self._failures.popitem(last=False)

    def forgive(self, keys: tuple[str, ...], at: float) -> None:
        """Take back a failure counted at `at` (counted before a check that then passed)."""
        for key in keys:
            times = self._failures.get(key)
            if times is not None and at in times:
                times.remove(at)

    def forget(self, keys: tuple[str, ...]) -> None:
        """Drop every failure of `keys` (after a success)."""
        for key in keys:
            self._failures.pop(key, None)
