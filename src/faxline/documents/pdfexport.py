"""Fax TIFF to PDF, page by page, without decoding: G4 strips go into the PDF as they are.

A PDF image can carry CCITT G4 data under ``/Filter /CCITTFaxDecode``, so a stored fax
page becomes a PDF page by copying bytes. The writer (:class:`PdfWriter`) is sans-I/O: it
takes pages and hands back bytes, keeping only object offsets (a few integers a page), so
an export costs the memory of one page whatever the page count. :func:`fax_tiff_pdf` reads
the TIFF's structure with :mod:`tiffstruct` and each strip with ``pread`` (a mapping
would count most of the file in RSS), and re-encodes only the pages
that cannot be copied (not G4, min-is-black, or in several strips): those are decoded by
libtiff and G4-coded again, one at a time.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, ExitStack, nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from faxline.documents import _libtiff
from faxline.documents.model import X_DPI
from faxline.documents.tiffstruct import (
    FdAccess,
    FileSource,
    RandomAccess,
    TiffFrame,
    TiffStructureError,
    read_frames,
)

__all__ = [
    "CcittImage",
    "PdfExportError",
    "PdfPage",
    "PdfWriter",
    "fax_pdf",
    "fax_tiff_pdf",
    "pdf_chunks",
]

# Where libtiff can read the whole TIFF (a page that must be decoded and coded again).
LocalFile = Callable[[], AbstractContextManager[Path]]

_DEFAULT_DPI = (float(X_DPI), 196.0)
_BIT_REVERSE = bytes(int(f"{b:08b}"[::-1], 2) for b in range(256))


class PdfExportError(ValueError):
    """The stored TIFF cannot be exported (malformed structure, or a page that is not
    bilevel)."""


@dataclass(frozen=True)
class CcittImage:
    """A page's pixels coded as CCITT G4 (T.6), MSB first, in one piece."""

    width: int
    rows: int
    g4: bytes


@dataclass(frozen=True)
class PdfPage:
    """One page: its size in points and its image, which fills it."""

    width_pt: float
    height_pt: float
    image: CcittImage


def _num(value: float) -> str:
    text = f"{value:.10f}".rstrip("0").rstrip(".")
    return text or "0"


class PdfWriter:
    """Writes a PDF as a sequence of chunks: :meth:`header`, one :meth:`page` each, then
    :meth:`trailer`. Object 1 is the catalog and 2 the page tree, written last since it
    lists every page."""

    def __init__(self) -> None:
        self._offsets: dict[int, int] = {}
        self._position = 0
        self._next = 3
        self._pages: list[int] = []

    def _emit(self, out: bytearray, number: int, body: bytes) -> None:
        self._offsets[number] = self._position + len(out)
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"

    def _done(self, out: bytearray) -> bytes:
        self._position += len(out)
        return bytes(out)

    def _allocate(self) -> int:
        number = self._next
        self._next += 1
        return number

    def header(self) -> bytes:
        # The binary comment marks the file as binary for transfer programs (PDF 7.5.2).
        return self._done(bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"))

    def page(self, page: PdfPage) -> bytes:
        if page.width_pt <= 0 or page.height_pt <= 0:
            raise ValueError("a page needs a positive size")
        image = page.image
        out = bytearray()
        page_number, contents, image_number = self._allocate(), self._allocate(), self._allocate()
        head = (
            f"<< /Type /XObject /Subtype /Image /Width {image.width} /Height {image.rows}"
            " /ColorSpace /DeviceGray /BitsPerComponent 1 /Filter /CCITTFaxDecode"
            f" /DecodeParms << /K -1 /Columns {image.width} /Rows {image.rows}"
            f" /BlackIs1 false >> /Length {len(image.g4)} >>\nstream\n"
        )
        self._emit(out, image_number, head.encode() + image.g4 + b"\nendstream")
        size = f"{_num(page.width_pt)} {_num(page.height_pt)}"
        content = f"q {_num(page.width_pt)} 0 0 {_num(page.height_pt)} 0 0 cm /Im0 Do Q".encode()
        self._emit(
            out,
            contents,
            f"<< /Length {len(content)} >>\nstream\n".encode() + content + b"\nendstream",
        )
        self._emit(
            out,
            page_number,
            (
                f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {size}]"
                f" /Resources << /XObject << /Im0 {image_number} 0 R >> >>"
                f" /Contents {contents} 0 R >>"
            ).encode(),
        )
        self._pages.append(page_number)
        return self._done(out)

    def trailer(self) -> bytes:
        if not self._pages:
            raise ValueError("a PDF needs at least one page")
        out = bytearray()
        self._emit(out, 1, b"<< /Type /Catalog /Pages 2 0 R >>")
        kids = " ".join(f"{n} 0 R" for n in self._pages)
        self._emit(out, 2, f"<< /Type /Pages /Kids [{kids}] /Count {len(self._pages)} >>".encode())
        xref_at = self._position + len(out)
        size = self._next
        out += f"xref\n0 {size}\n0000000000 65535 f \n".encode()
        for number in range(1, size):
            # Each entry is exactly 20 bytes, "\n" preceded by a space (PDF 7.5.4).
            out += f"{self._offsets[number]:010d} 00000 n \n".encode()
        out += f"trailer\n<< /Size {size} /Root 1 0 R >>\nstartxref\n{xref_at}\n%%EOF\n".encode()
        return self._done(out)


def pdf_chunks(pages: Iterable[PdfPage]) -> Iterator[bytes]:
    """The PDF of ``pages``, one chunk for the header, one per page and one for the end."""
    writer = PdfWriter()
    yield writer.header()
    for page in pages:
        yield writer.page(page)
    yield writer.trailer()


def _copyable(frame: TiffFrame) -> bool:
    fill_order = int(frame.first(266, 1) or 1)
    return (
        frame.compression == 4
        and frame.photometric in (0, None)
        and fill_order in (1, 2)
        and int(frame.first(293, 0) or 0) & 2 == 0  # T6Options: no uncompressed mode
        and not frame.tiled
        and frame.bits_per_sample == 1
        and frame.samples_per_pixel == 1
        # One strip: strips are coded apart, and bands of images placed one above the
        # other do not render exactly (pdfium stretches some by a row), so such a page is
        # re-encoded whole.
        and frame.strips == 1
        and len(frame.tags.get(279, ())) == 1
    )


def _copied_image(source: RandomAccess, size: int, frame: TiffFrame) -> CcittImage:
    start = int(frame.tags[273][0])
    end = start + int(frame.tags[279][0])
    if end > size:
        raise PdfExportError(f"a strip of the TIFF lies outside the file ({end} > {size})")
    g4 = source.pread(end - start, start)
    if len(g4) != end - start:
        raise PdfExportError(f"a strip of the TIFF ends early ({len(g4)} of {end - start} bytes)")
    if int(frame.first(266, 1) or 1) == 2:  # FillOrder: least significant bit first
        g4 = g4.translate(_BIT_REVERSE)
    return CcittImage(frame.width, frame.length, g4)


def _reencoded_image(path: Path, index: int) -> CcittImage:
    try:
        pixels = _libtiff.decode_page(path, index)
        packed = np.packbits(pixels, axis=1)
        single = _libtiff.encode_g4_tiff(packed, pixels.shape[1])
    except _libtiff.LibtiffError as exc:
        raise PdfExportError(f"page {index + 1} cannot be read: {exc}") from exc
    frame = read_frames(single)[0]
    start, count = int(frame.tags[273][0]), int(frame.tags[279][0])
    return CcittImage(pixels.shape[1], pixels.shape[0], single[start : start + count])


def _pages(
    source: RandomAccess, local_file: LocalFile, frames: list[TiffFrame]
) -> Iterator[PdfPage]:
    with ExitStack() as stack:
        path: Path | None = None
        for index, frame in enumerate(frames):
            x_dpi, y_dpi = frame.resolution() or _DEFAULT_DPI
            if _copyable(frame):
                image = _copied_image(source, source.size, frame)
            else:
                if path is None:  # made once, and only for a page that needs libtiff
                    path = stack.enter_context(local_file())
                image = _reencoded_image(path, index)
            yield PdfPage(image.width / x_dpi * 72, image.rows / y_dpi * 72, image)


def fax_tiff_pdf(path: str | os.PathLike[str]) -> Iterator[bytes]:
    """The PDF of the fax TIFF at ``path``, as chunks of about one page each.

    The TIFF's structure is read on the first ``next()``, so a malformed file raises
    :class:`PdfExportError` before any byte is handed out; each page's strip is read
    (``pread``) as it is written. The file stays open: a removed file is readable to the end.
    """
    file = Path(path)
    with file.open("rb") as handle:
        yield from fax_pdf(FdAccess(handle.fileno()), lambda: nullcontext(file))


def fax_pdf(source: RandomAccess, local_file: LocalFile) -> Iterator[bytes]:
    """The PDF of the fax TIFF that `source` reads, as chunks of about one page each: the
    structure on the first ``next()``, then each page's strip by offset. `local_file` is
    entered only if a page must be re-encoded (libtiff reads a path)."""
    frames = _structure(source)
    yield from pdf_chunks(_pages(source, local_file, frames))


def _structure(source: RandomAccess) -> list[TiffFrame]:
    try:
        frames = read_frames(FileSource(source))
    except TiffStructureError as exc:
        raise PdfExportError(str(exc)) from exc
    for frame in frames:
        if frame.width < 1 or frame.length < 1:
            raise PdfExportError("the TIFF has a page without pixels")
    return frames
