"""The ids in scope for what is being logged: request, fax, delivery, attempt, call, trunk.

Each is a context variable, so it follows a request or a delivery through its awaits and
into `asyncio.to_thread` (which copies the context), and never leaks into a neighbour's
task. :func:`scope` sets some for the duration of a block.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager

FIELDS = ("request_id", "fax_id", "delivery_id", "attempt_id", "call_id", "trunk")

_VARS: dict[str, contextvars.ContextVar[str | int | None]] = {
    name: contextvars.ContextVar(f"faxline_{name}", default=None) for name in FIELDS
}


@contextmanager
def scope(**ids: str | int | None) -> Iterator[None]:
    """Within the block, log lines carry these ids (None leaves one as it was)."""
    unknown = set(ids) - set(FIELDS)
    if unknown:
        raise TypeError(f"unknown log context ids: {sorted(unknown)}")
    tokens = [(_VARS[k], _VARS[k].set(v)) for k, v in ids.items() if v is not None]
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def current() -> dict[str, str | int]:
    """The ids set now, by name."""
    values = {name: var.get() for name, var in _VARS.items()}
    return {k: v for k, v in values.items() if v is not None}
