"""Plain text to fax pages: decode, lay out in ~80 monospace columns, typeset as PDF.

reportlab writes the PDF and pdfium renders it (2.4x faster than drawing with Pillow).
"""

from __future__ import annotations

import io
import math
import os
import re
from collections.abc import Iterator, Sequence

from faxline.documents.errors import ConverterSetupError
from faxline.documents.model import FAX_WIDTH, X_DPI

FONT_PATH = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf"
FONT_PACKAGE = "fonts-dejavu-core"
COLUMNS = 80
LINES_PER_PAGE = 60
TAB_SIZE = 8

_FONT_NAME = "FaxlineMono"
_FONT_SIZE = 10.5
_LEADING = 12.5
_PAGE_WIDTH_PT = FAX_WIDTH / X_DPI * 72  # exactly the fax width: no scaling when rendered
_PAGE_HEIGHT_PT = 297 / 25.4 * 72  # A4 length
_TOP_PT = 40.0
_WRAP_MIN = COLUMNS // 2  # break at a space only if the line keeps at least half its width


def decode_text(data: bytes, encoding: str) -> str:
    """Decode the bytes of a text document (a UTF-8 byte order mark is dropped)."""
    text = data.decode(encoding)
    return text.removeprefix("\ufeff")


def has_content(text: str) -> bool:
    """True when ``text`` holds something that prints (not only spaces or controls)."""
    return any(ch.isprintable() and not ch.isspace() for ch in set(text))


def _clean(line: str) -> str:
    if line.isprintable():
        return line.expandtabs(TAB_SIZE)
    kept = "".join(ch for ch in line if ch == "\t" or ch.isprintable())
    return kept.expandtabs(TAB_SIZE)


def _wrap(line: str) -> list[str]:
    if len(line) <= COLUMNS:
        return [line]
    out: list[str] = []
    start, end = 0, len(line)
    while end - start > COLUMNS:
        cut = line.rfind(" ", start + _WRAP_MIN, start + COLUMNS + 1)
        if cut == -1:
            out.append(line[start : start + COLUMNS])
            start += COLUMNS
        else:
            out.append(line[start:cut].rstrip(" "))
            start = cut + 1
    out.append(line[start:])
    return out


def _sections(text: str) -> Iterator[str]:
    start = 0
    while True:
        end = text.find("\f", start)
        if end == -1:
            yield text[start:]
            return
        yield text[start:end]
        start = end + 1


_TRAILING_BLANK = re.compile(r"[\s\x00-\x1f\x7f-\x9f]*")


def _content_end(text: str) -> int:
    """Index just after the last printable character (0 when there is none)."""
    end = len(text) - _TRAILING_BLANK.match(text[::-1]).end()  # type: ignore[union-attr]
    while end and not (text[end - 1].isprintable() and not text[end - 1].isspace()):
        end -= 1
    return end


def layout_text(text: str, max_pages: int | None = None) -> list[list[str]]:
    """Lay text out as pages of lines.

    Lines wrap at ``COLUMNS`` (at a space when there is one in the second half of the line),
    tabs expand to 8 columns, controls other than TAB are dropped, and a form feed starts a
    new page. Blank form-feed sections at the end add no page, and text with no printable
    content has no pages at all. With ``max_pages``, layout stops once that many pages are
    exceeded (the result then has ``max_pages + 1`` pages), so hostile text costs little.
    """
    if not has_content(text):
        return []
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = text[: _content_end(text)]  # what follows the last printable adds no page
    limit = math.inf if max_pages is None else max_pages
    pages: list[list[str]] = []
    for section in _sections(text):
        page: list[str] = []
        blank_lines = 0  # blank lines owed, paid only if content follows them
        for raw in section.split("\n"):
            for line in _wrap(_clean(raw)):
                if not line.strip():
                    blank_lines += 1
                    continue
                for pending in [""] * blank_lines + [line]:
                    if len(page) == LINES_PER_PAGE:
                        pages.append(page)
                        if len(pages) > limit:
                            return pages
                        page = []
                    page.append(pending)
                blank_lines = 0
        pages.append(page)  # a section without content is a blank page
        if len(pages) > limit:
            return pages
    return pages


_registered: dict[str, str] = {}  # font file -> reportlab font name, once per process


def _register_font(path: str) -> str:
    name = _registered.get(path)
    if name is not None:
        return name
    if not os.path.exists(path):
        raise ConverterSetupError(
            f"cannot typeset text: the font {path} is missing "
            f"(install the Debian package {FONT_PACKAGE})"
        )
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    name = f"{_FONT_NAME}{len(_registered)}"
    pdfmetrics.registerFont(TTFont(name, path))
    _registered[path] = name
    return name


def preload() -> None:
    """Import reportlab now (it is otherwise imported on the first text document)."""
    import reportlab.pdfbase.ttfonts
    import reportlab.pdfgen.canvas  # noqa: F401


def typeset(pages: Sequence[Sequence[str]], font_path: str = FONT_PATH) -> bytes:
    """Typeset laid-out pages as a PDF whose pages are exactly fax-wide and A4-long.

    Raises ConverterSetupError when the monospace font is missing.
    """
    font = _register_font(font_path)
    from reportlab.pdfgen import canvas

    out = io.BytesIO()
    pdf = canvas.Canvas(
        out, pagesize=(_PAGE_WIDTH_PT, _PAGE_HEIGHT_PT), pageCompression=0, invariant=True
    )
    advance = pdf.stringWidth("M", font, _FONT_SIZE)
    left = (_PAGE_WIDTH_PT - advance * COLUMNS) / 2
    for lines in pages:
        if lines:
            block = pdf.beginText(left, _PAGE_HEIGHT_PT - _TOP_PT - _FONT_SIZE)
            block.setFont(font, _FONT_SIZE, _LEADING)
            for line in lines:
                block.textLine(line)
            pdf.drawText(block)
        pdf.showPage()
    pdf.save()
    return out.getvalue()
