"""Filenames as clients send them, made safe to store and to show.

A client's filename is text it chose: it can hold a path, NUL (which PostgreSQL refuses in
text), newlines (which break headers and logs), other control or format characters, lone
surrogates (not encodable as UTF-8) and any length. :func:`clean_filename` keeps the last
path part and only printable characters, at most :data:`MAX_LENGTH` of them with the
extension kept, and is never empty. It is idempotent, so names cleaned when stored can be
cleaned again when shown (rows stored before cleaning existed are shown cleaned too).
"""

from __future__ import annotations

import unicodedata
from urllib.parse import quote

__all__ = ["MAX_LENGTH", "clean_filename", "content_disposition", "fallback_name"]

MAX_LENGTH = 255
"""Characters in a cleaned filename (the column holds 255)."""

_MAX_EXTENSION = 16  # a longer "extension" is part of the name, not worth keeping whole


def fallback_name(index: int) -> str:
    """The name of the ``index``-th document (from 0) when it has none worth keeping."""
    return f"document-{index + 1}"


def _printable(text: str) -> str:
    # Whitespace controls (tab, newline, ...) become a space so words stay apart; every
    # other non-printable character (Cc, Cf, Cs, Co, Cn, Zl, Zp) is dropped.
    out = []
    for ch in text:
        if ch.isprintable():
            out.append(ch)
        elif ch.isspace():
            out.append(" ")
    return "".join(out).strip()


def _truncate(name: str) -> str:
    if len(name) <= MAX_LENGTH:
        return name
    stem, dot, extension = name.rpartition(".")
    if dot and stem and 0 < len(extension) <= _MAX_EXTENSION:
        return stem[: MAX_LENGTH - len(extension) - 1].rstrip() + "." + extension
    return name[:MAX_LENGTH].rstrip()


def clean_filename(name: str | None, index: int) -> str:
    """``name`` as printable text of at most 255 characters, without path parts; the
    fallback :func:`fallback_name` when nothing is left (or nothing was given)."""
    if not name:
        return fallback_name(index)
    text = _printable(unicodedata.normalize("NFC", _printable(name)))
    # Clients send full paths ("/path/to/file/fax.txt", "C:\\fax.pdf"): keep the last part.
    last = text.replace("\\", "/").rsplit("/", 1)[-1].strip()
    if last.strip(".") == "":
        return fallback_name(index)
    return _truncate(last)


def content_disposition(filename: str, *, disposition: str = "attachment") -> str:
    """A Content-Disposition value for ``filename`` (RFC 6266): a plain ASCII ``filename``
    for old clients and the exact name as UTF-8 in ``filename*`` (RFC 8187)."""
    clean = clean_filename(filename, 0)
    ascii_name = "".join(
        ch if " " <= ch <= "~" and ch not in '"\\%' else "_" for ch in clean
    ).strip()
    value = f'{disposition}; filename="{ascii_name or fallback_name(0)}"'
    if ascii_name != clean:
        value += f"; filename*=UTF-8''{quote(clean, safe='')}"
    return value
