"""Secrets kept out of logs: tokens, client secrets and credentials in whatever is logged.

uvicorn's access log writes each request's path with its query, and UAPI clients may put
their token there (`?accessRequestToken=Bearer ...`). The filter rewrites every record
before any handler formats it.
"""

from __future__ import annotations

import logging
import re

REDACTED = "[redacted]"

# Query parameters whose values are secrets, in any case, percent-encoded names included.
_QUERY_SECRET = re.compile(
    r"(?i)((?:^|[?&;\s\"'])(?:accessRequestToken|access_token|client_secret|token|"
    r"refresh_token|password)=)[^&;\s\"']*"
)
# Credentials after an auth scheme, wherever they appear (a header echoed in a message).
_SCHEME_SECRET = re.compile(r"(?i)\b(Bearer|Basic)(\s+|%20|\+)[A-Za-z0-9._~+/=%-]+")


def redact(text: str) -> str:
    """`text` with the values of secret query parameters and of credentials replaced."""
    text = _QUERY_SECRET.sub(lambda m: m.group(1) + REDACTED, text)
    return _SCHEME_SECRET.sub(lambda m: m.group(1) + m.group(2) + REDACTED, text)


class RedactingFilter(logging.Filter):
    """Put on handlers: records of every logger pass through it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        return True


def install(loggers: tuple[str, ...] = ("", "uvicorn", "uvicorn.access", "uvicorn.error")) -> None:
    """Add the filter to every handler of these loggers (after logging is configured)."""
    for name in loggers:
        for handler in logging.getLogger(name).handlers:
            if not any(isinstance(f, RedactingFilter) for f in handler.filters):
                handler.addFilter(RedactingFilter())
