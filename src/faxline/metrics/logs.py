"""Log lines for people (text, the default) or for machines (one JSON object per line).

`FAXLINE_LOG_FORMAT=json` gives each record as an object with `time` (UTC, ISO 8601),
`level`, `logger`, `message`, the ids in scope (:mod:`.context`) and `exception` when
there is one. Both formats pass the final line through a redactor (the API's, which knows
token and secret shapes), so a secret in an argument or a traceback never reaches a file.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable

from faxline.metrics import context

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def __init__(self, redact: Callable[[str], str] = lambda s: s) -> None:
        super().__init__()
        self._redact = redact

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": self._redact(record.getMessage()),
        }
        entry.update(context.current())
        if record.exc_info:
            entry["exception"] = self._redact(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """The readable default, with the ids in scope appended in brackets."""

    def __init__(self, redact: Callable[[str], str] = lambda s: s) -> None:
        super().__init__(TEXT_FORMAT)
        self._redact = redact

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        ids = context.current()
        if ids:
            line += " [" + " ".join(f"{k}={v}" for k, v in ids.items()) + "]"
        return self._redact(line)


def configure(
    fmt: str, level: int = logging.INFO, redact: Callable[[str], str] = lambda s: s
) -> logging.Handler:
    """Send every logger's records (uvicorn's included) to stderr in `fmt` (text | json)."""
    if fmt not in ("text", "json"):
        raise ValueError(f"log format must be text or json, not {fmt!r}")
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter(redact) if fmt == "json" else TextFormatter(redact))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        child = logging.getLogger(name)
        child.handlers.clear()
        child.propagate = True
    return handler
