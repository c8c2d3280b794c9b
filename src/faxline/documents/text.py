"""Plain text to fax pages: decode, lay out in ~80 monospace columns, typeset as PDF.

reportlab writes the PDF and pdfium renders it (2.4x faster than drawing with Pillow).
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence

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
    out: list[str] = []
    while len(line) > COLUMNS:
        cut = line.rfind(" ", _WRAP_MIN, COLUMNS + 1)
        if cut == -1:
            out.append(line[:COLUMNS])
            line = line[COLUMNS:]
        else:
            out.append(line[:cut].rstrip(" "))
            line = line[cut + 1 :]
    out.append(line)
    return out


def layout_text(text: str) -> list[list[str]]:
    """Lay text out as pages of lines.

    Lines wrap at ``COLUMNS`` (at a space when there is one in the second half of the line),
    tabs expand to 8 columns, controls other than TAB are dropped, and a form feed starts a
    new page. Blank form-feed sections at the end add no page, and text with no printable
    content has no pages at all.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not has_content(text):
        return []
    sections = text.split("\f")
    while not has_content(sections[-1]):
        sections.pop()
    pages: list[list[str]] = []
    for section in sections:
        lines: list[str] = []
        for raw in section.split("\n"):
            lines.extend(_wrap(_clean(raw)))
        while lines and not lines[-1].strip():
            lines.pop()
        if not lines:
            pages.append([])
        for start in range(0, len(lines), LINES_PER_PAGE):
            pages.append(lines[start : start + LINES_PER_PAGE])
    return pages


_registered = False


def _register_font() -> None:
    global _registered
    if _registered:
        return
    if not os.path.exists(FONT_PATH):
        raise ConverterSetupError(
            f"cannot typeset text: the font {FONT_PATH} is missing "
            f"(install the Debian package {FONT_PACKAGE})"
        )
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    pdfmetrics.registerFont(TTFont(_FONT_NAME, FONT_PATH))
    _registered = True


def preload() -> None:
    """Import reportlab now (it is otherwise imported on the first text document)."""
    import reportlab.pdfbase.ttfonts
    import reportlab.pdfgen.canvas  # noqa: F401


def typeset(pages: Sequence[Sequence[str]]) -> bytes:
    """Typeset laid-out pages as a PDF whose pages are exactly fax-wide and A4-long."""
    _register_font()
    from reportlab.pdfgen import canvas

    out = io.BytesIO()
    pdf = canvas.Canvas(
        out, pagesize=(_PAGE_WIDTH_PT, _PAGE_HEIGHT_PT), pageCompression=0, invariant=True
    )
    advance = pdf.stringWidth("M", _FONT_NAME, _FONT_SIZE)
    left = (_PAGE_WIDTH_PT - advance * COLUMNS) / 2
    for lines in pages:
        if lines:
            block = pdf.beginText(left, _PAGE_HEIGHT_PT - _TOP_PT - _FONT_SIZE)
            block.setFont(_FONT_NAME, _FONT_SIZE, _LEADING)
            for line in lines:
                block.textLine(line)
            pdf.drawText(block)
        pdf.showPage()
    pdf.save()
    return out.getvalue()
