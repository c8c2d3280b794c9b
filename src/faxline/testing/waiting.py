"""Waiting in tests for something another process does: its output, or a condition.

Tests wait on the event itself: a line a server prints (:class:`OutputWatcher`), a process
ending, or, when the only way to see a change is to look at it (a row another process
writes), a condition polled here and nowhere else (:func:`eventually`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO


def eventually(
    predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.05
) -> None:
    """Return once `predicate()` holds; AssertionError naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


class OutputWatcher:
    """Copies a child's output (a pipe) into a log file and lets tests wait for a line."""

    def __init__(self, stream: IO[bytes], log: Path) -> None:
        self.log = log
        self._stream = stream
        self._lines: list[str] = []
        self._changed = threading.Condition()
        self._ended = False
        self._thread = threading.Thread(target=self._copy, daemon=True)
        self._thread.start()

    def _copy(self) -> None:
        with self.log.open("ab") as out:
            for raw in iter(self._stream.readline, b""):
                out.write(raw)
                out.flush()
                with self._changed:
                    self._lines.append(raw.decode("utf-8", "replace"))
                    self._changed.notify_all()
        self._stream.close()
        with self._changed:
            self._ended = True
            self._changed.notify_all()

    def wait_for(self, text: str, timeout: float) -> str:
        """The first line holding `text`; AssertionError (with the output) if the process
        ends or `timeout` passes first."""
        deadline = time.monotonic() + timeout
        with self._changed:
            seen = 0
            while True:
                for line in self._lines[seen:]:
                    if text in line:
                        return line
                seen = len(self._lines)
                remaining = deadline - time.monotonic()
                if self._ended or remaining <= 0:
                    output = "".join(self._lines)
                    raise AssertionError(f"no line with {text!r} in the output:\n{output}")
                self._changed.wait(remaining)

    def text(self) -> str:
        with self._changed:
            return "".join(self._lines)

    def close(self) -> None:
        """Wait for the output to end (the process has exited)."""
        self._thread.join(timeout=5)
