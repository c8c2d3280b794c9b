"""PDF pages to bilevel fax pages with pdfium, rendered straight at the target size."""

from __future__ import annotations

import ctypes
import math
from collections.abc import Iterator, Sequence

import numpy as np
import numpy.typing as npt
import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

from faxline.documents.errors import DocumentError
from faxline.documents.model import FAX_WIDTH, Resolution
from faxline.documents.raster import dither_box, pack, place

_RENDER_FLAGS = pdfium_c.FPDF_ANNOT | pdfium_c.FPDF_GRAYSCALE
_MAX_OBJECTS_INSPECTED = 5000
_EDGE = 2
_MAX_FORM_DEPTH = 8


def open_pdf(data: bytes, name: str) -> pdfium.PdfDocument:
    """Open a PDF held in memory; DocumentError when it is corrupt or needs a password."""
    try:
        return pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        code = getattr(exc, "err_code", None)
        if code == pdfium_c.FPDF_ERR_PASSWORD:
            raise DocumentError(name, "the PDF is encrypted") from None
        if code == pdfium_c.FPDF_ERR_SECURITY:
            raise DocumentError(name, "the PDF uses an unsupported encryption") from None
        raise DocumentError(name, "the PDF is corrupt or truncated") from None


def render_pages(
    doc: pdfium.PdfDocument,
    indices: Sequence[int],
    resolution: Resolution,
    name: str,
    max_pixels: int,
) -> Iterator[npt.NDArray[np.uint8]]:
    """Yield each page in ``indices`` as packed bits (rows x 216 bytes).

    Picture areas (images, shadings) are dithered, everything else is thresholded, so text
    stays crisp next to photos. An image over ``max_pixels`` is refused before rendering.
    """
    for index in indices:
        try:
            page = doc[index]
        except pdfium.PdfiumError:
            raise DocumentError(name, f"page {index + 1} of the PDF is corrupt") from None
        try:
            yield _render_page(page, resolution, _Scan(page, name, index, max_pixels))
        finally:
            page.close()


def _render_page(
    page: pdfium.PdfPage, resolution: Resolution, scan: _Scan
) -> npt.NDArray[np.uint8]:
    width_pt = pdfium_c.FPDF_GetPageWidthF(page.raw)
    height_pt = pdfium_c.FPDF_GetPageHeightF(page.raw)
    if (
        not (math.isfinite(width_pt) and math.isfinite(height_pt))
        or width_pt <= 0
        or height_pt <= 0
    ):
        raise scan.error("has no size")
    pictures = scan.pictures()
    spot = place(width_pt / 72, height_pt / 72, resolution)
    gray = np.full((spot.rows, FAX_WIDTH), 255, dtype=np.uint8)
    bitmap = pdfium_c.FPDFBitmap_CreateEx(
        FAX_WIDTH,
        spot.rows,
        pdfium_c.FPDFBitmap_Gray,
        gray.ctypes.data_as(ctypes.c_void_p),
        FAX_WIDTH,
    )
    if not bitmap:
        raise MemoryError("pdfium could not allocate a bitmap")
    try:
        pdfium_c.FPDF_RenderPageBitmap(
            bitmap, page.raw, spot.left, 0, spot.width, spot.rows, 0, _RENDER_FLAGS
        )
    finally:
        pdfium_c.FPDFBitmap_Destroy(bitmap)
    bits = gray < 128
    for bounds in pictures:
        box = _device_box(page, spot.left, spot.width, spot.rows, bounds)
        if box is not None:
            dither_box(bits, gray, box)
    return pack(bits)


class _Scan:
    """One look at a page's objects: where its pictures are, and whether one is too big.

    At most ``_MAX_OBJECTS_INSPECTED`` objects are looked at (forms included): a page of
    thousands of objects is vector art or text, and gets thresholded.
    """

    def __init__(self, page: pdfium.PdfPage, name: str, index: int, max_pixels: int) -> None:
        self._page = page
        self._name = name
        self._index = index
        self._max_pixels = max_pixels
        self._budget = _MAX_OBJECTS_INSPECTED

    def error(self, reason: str) -> DocumentError:
        return DocumentError(self._name, f"page {self._index + 1} {reason}")

    def pictures(self) -> list[tuple[float, float, float, float]]:
        """Page-space bounds (left, bottom, right, top) of the top-level picture objects."""
        found: list[tuple[float, float, float, float]] = []
        raw = self._page.raw
        for i in range(pdfium_c.FPDFPage_CountObjects(raw)):
            if self._budget <= 0:
                break
            obj = pdfium_c.FPDFPage_GetObject(raw, i)
            if self._is_picture(obj, 0):
                bounds = [ctypes.c_float() for _ in range(4)]
                if pdfium_c.FPDFPageObj_GetBounds(obj, *(ctypes.byref(b) for b in bounds)):
                    left, bottom, right, top = (b.value for b in bounds)
                    found.append((left, bottom, right, top))
        return found

    def _is_picture(self, obj: object, depth: int) -> bool:
        self._budget -= 1
        kind = pdfium_c.FPDFPageObj_GetType(obj)
        if kind == pdfium_c.FPDF_PAGEOBJ_IMAGE:
            metadata = pdfium_c.FPDF_IMAGEOBJ_METADATA()
            if not pdfium_c.FPDFImageObj_GetImageMetadata(
                obj, self._page.raw, ctypes.byref(metadata)
            ):
                return True
            if metadata.width * metadata.height > self._max_pixels:
                raise self.error(
                    f"holds an image of {metadata.width} x {metadata.height} pixels, "
                    f"over the limit of {self._max_pixels} pixels"
                )
            return bool(metadata.bits_per_pixel != 1)  # a scan or line art: threshold it
        if kind == pdfium_c.FPDF_PAGEOBJ_SHADING:
            return True
        if kind == pdfium_c.FPDF_PAGEOBJ_FORM and depth < _MAX_FORM_DEPTH:
            found = False
            for i in range(pdfium_c.FPDFFormObj_CountObjects(obj)):
                if self._budget <= 0:
                    break
                child = pdfium_c.FPDFFormObj_GetObject(obj, i)
                found = self._is_picture(child, depth + 1) or found
            return found
        return False


def _device_box(
    page: pdfium.PdfPage,
    left: int,
    width: int,
    rows: int,
    bounds: tuple[float, float, float, float],
) -> tuple[int, int, int, int] | None:
    lo_x, lo_y, hi_x, hi_y = bounds
    corners = [
        _to_device(page, left, width, rows, x, y) for x in (lo_x, hi_x) for y in (lo_y, hi_y)
    ]
    xs = [c[0] for c in corners]
    ys = [c[1] for c in corners]
    # A margin covers the picture's anti-aliased edge, which would otherwise be
    # thresholded into a hard line.
    x0, x1 = max(0, min(xs) - _EDGE), min(FAX_WIDTH, max(xs) + 1 + _EDGE)
    y0, y1 = max(0, min(ys) - _EDGE), min(rows, max(ys) + 1 + _EDGE)
    return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None


def _to_device(
    page: pdfium.PdfPage, left: int, width: int, rows: int, x: float, y: float
) -> tuple[int, int]:
    dx, dy = ctypes.c_int(), ctypes.c_int()
    pdfium_c.FPDF_PageToDevice(
        page.raw, left, 0, width, rows, 0, x, y, ctypes.byref(dx), ctypes.byref(dy)
    )
    return dx.value, dy.value
