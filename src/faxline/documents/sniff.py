"""Deciding a document's type from its bytes; the filename only breaks ties for text.

Office documents are told apart by content too: an OOXML or OpenDocument file is a zip
whose parts name it (``office``), an old Word/Excel/PowerPoint file is an OLE2 compound
file, RTF starts with ``{\\rtf`` and HTML with a doctype or an ``<html>`` tag.
"""

from __future__ import annotations

from typing import Literal

Kind = Literal[
    "pdf", "tiff", "jpeg", "png", "gif", "bmp", "webp",
    "docx", "xlsx", "pptx", "odt", "ods", "odp", "doc", "xls", "ppt", "rtf", "html", "text",
]  # fmt: skip
IMAGE_KINDS: frozenset[Kind] = frozenset({"png", "gif", "bmp", "webp"})
"""Single-image formats that take the JPEG path (fit to the page, dithered)."""
OFFICE_KINDS: frozenset[Kind] = frozenset(
    {"docx", "xlsx", "pptx", "odt", "ods", "odp", "doc", "xls", "ppt", "rtf", "html"}
)
"""Formats that LibreOffice turns into PDF first (see ``office``)."""

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
    image = _image_kind(data)
    if image is not None:
        return image
    if data[:4] == b"PK\x03\x04":
        from faxline.documents.zipcheck import zip_kind  # zipfile: only for zips

        return zip_kind(data)
    if data[:8] == _OLE2_MAGIC:
        return _ole2_kind(data)
    if data[:5] == b"{\\rtf":
        return "rtf"
    if _looks_like_html(data):
        return "html"
    if text_encoding(data, filename) is not None:
        return "text"
    return None


_OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_HTML_START = (b"<!doctype html", b"<html")


def _image_kind(data: bytes) -> Kind | None:
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if data[:2] == b"BM" and len(data) >= 26:
        return "bmp"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def _ole2_kind(data: bytes) -> Kind | None:
    # The directory of a compound file names its streams in UTF-16; the main stream says
    # which application wrote it. Looking for the names is enough to pick the filter:
    # LibreOffice then reads the file itself, and refuses it if it is not what it says.
    for stream, kind in _OLE2_STREAMS:
        if stream in data:
            return kind
    return None


_OLE2_STREAMS: tuple[tuple[bytes, Kind], ...] = (
    ("WordDocument".encode("utf-16-le"), "doc"),
    ("Workbook".encode("utf-16-le"), "xls"),
    ("Book".encode("utf-16-le"), "xls"),
    ("PowerPoint Document".encode("utf-16-le"), "ppt"),
)


def _looks_like_html(data: bytes) -> bool:
    head = data[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return head.startswith(_HTML_START)


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
