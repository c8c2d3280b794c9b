"""Deciding a document's type from its bytes; the filename only breaks ties for text."""

from __future__ import annotations

from typing import Literal

Kind = Literal["pdf", "tiff", "jpeg", "text"]

_TIFF_MAGICS = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
_ALLOWED_CONTROLS = frozenset("\t\n\r\f")
_PDF_SEARCH = 1024  # PDF readers accept a little junk before the header; we accept whitespace


def sniff(data: bytes, filename: str | None) -> Kind | None:
    """Return the document type of ``data``, or None when it is none of the four.

    A file is text when it has no NUL bytes and is valid UTF-8, or when it is named
    ``.txt`` and decodes as Latin-1 with no control characters other than TAB, LF, CR and
    FF. An empty file is text.
    """
    if data.lstrip(b" \t\r\n\f\x00")[:5] == b"%PDF-" and data.find(b"%PDF-") < _PDF_SEARCH:
        return "pdf"
    if data[:4] in _TIFF_MAGICS:
        return "tiff"
    if data[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if text_encoding(data, filename) is not None:
        return "text"
    return None


def text_encoding(data: bytes, filename: str | None) -> Literal["utf-8", "latin-1"] | None:
    """The encoding under which ``data`` counts as text, or None when it is not text."""
    if b"\x00" not in data:
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            return "utf-8"
    if filename is not None and filename.lower().endswith(".txt"):
        text = data.decode("latin-1")
        if all(ch in _ALLOWED_CONTROLS or not _is_control(ch) for ch in set(text)):
            return "latin-1"
    return None


def _is_control(ch: str) -> bool:
    code = ord(ch)
    return code < 0x20 or 0x7F <= code <= 0x9F
