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
from faxline.documents.raster import _SCREEN, pack, place

_RENDER_FLAGS = pdfium_c.FPDF_ANNOT | pdfium_c.FPDF_GRAYSCALE
_MAX_OBJECTS_INSPECTED = 5000
_EDGE = 2
_PICTURE_TYPES = (pdfium_c.FPDF_PAGEOBJ_IMAGE, pdfium_c.FPDF_PAGEOBJ_SHADING)


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
    doc: pdfium.PdfDocument, indices: Sequence[int], resolution: Resolution, name: str
) -> Iterator[npt.NDArray[np.uint8]]:
    """Yield each page in ``indices`` as packed bits (rows x 216 bytes).

    Picture areas (images, shadings) are dithered, everything else is thresholded, so text
    stays crisp next to photos.
    """
    for index in indices:
        try:
            page = doc[index]
        except pdfium.PdfiumError:
            raise DocumentError(name, f"page {index + 1} of the PDF is corrupt") from None
        try:
            yield _render_page(page, resolution, name, index)
        finally:
            page.close()


def _render_page(
    page: pdfium.PdfPage, resolution: Resolution, name: str, index: int
) -> npt.NDArray[np.uint8]:
    width_pt = pdfium_c.FPDF_GetPageWidthF(page.raw)
    height_pt = pdfium_c.FPDF_GetPageHeightF(page.raw)
    if (
        not (math.isfinite(width_pt) and math.isfinite(height_pt))
        or width_pt <= 0
        or height_pt <= 0
    ):
        raise DocumentError(name, f"page {index + 1} has no size")
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
    for x0, y0, x1, y1 in _picture_boxes(page, spot.left, spot.width, spot.rows):
        region = gray[y0:y1, x0:x1]
        p = _SCREEN.shape[0]
        screen = np.tile(_SCREEN, (-(-y1 // p), -(-x1 // p)))[y0:y1, x0:x1]
        bits[y0:y1, x0:x1] = region < screen
    return pack(bits)


def _picture_boxes(
    page: pdfium.PdfPage, left: int, width: int, rows: int
) -> list[tuple[int, int, int, int]]:
    """Device-space boxes of the page's pictures (images, shadings, forms holding them)."""
    boxes: list[tuple[int, int, int, int]] = []
    count = pdfium_c.FPDFPage_CountObjects(page.raw)
    if count > _MAX_OBJECTS_INSPECTED:
        return boxes  # a page of thousands of objects is vector art or text: threshold it
    bounds = [ctypes.c_float() for _ in range(4)]
    refs = [ctypes.byref(b) for b in bounds]
    for i in range(count):
        obj = pdfium_c.FPDFPage_GetObject(page.raw, i)
        kind = pdfium_c.FPDFPageObj_GetType(obj)
        if kind == pdfium_c.FPDF_PAGEOBJ_IMAGE:
            if _is_bilevel_image(obj, page):
                continue  # a scan or line art: threshold it like text
        elif kind not in _PICTURE_TYPES and not (
            kind == pdfium_c.FPDF_PAGEOBJ_FORM and _form_has_picture(obj, 0)
        ):
            continue
        if not pdfium_c.FPDFPageObj_GetBounds(obj, *refs):
            continue
        lo_x, lo_y, hi_x, hi_y = (b.value for b in bounds)
        corners = [
            _to_device(page, left, width, rows, x, y) for x in (lo_x, hi_x) for y in (lo_y, hi_y)
        ]
        xs = [c[0] for c in corners]
        ys = [c[1] for c in corners]
        # A margin covers the picture's anti-aliased edge, which would otherwise be
        # thresholded into a hard line.
        x0, x1 = max(0, min(xs) - _EDGE), min(FAX_WIDTH, max(xs) + 1 + _EDGE)
        y0, y1 = max(0, min(ys) - _EDGE), min(rows, max(ys) + 1 + _EDGE)
        if x1 > x0 and y1 > y0:
            boxes.append((x0, y0, x1, y1))
    return boxes


def _is_bilevel_image(obj: object, page: pdfium.PdfPage) -> bool:
    metadata = pdfium_c.FPDF_IMAGEOBJ_METADATA()
    if not pdfium_c.FPDFImageObj_GetImageMetadata(obj, page.raw, ctypes.byref(metadata)):
        return False
    return bool(metadata.bits_per_pixel == 1)


def _form_has_picture(form: int, depth: int) -> bool:
    if depth > 8:
        return False
    count = pdfium_c.FPDFFormObj_CountObjects(form)
    for i in range(min(count, _MAX_OBJECTS_INSPECTED)):
        obj = pdfium_c.FPDFFormObj_GetObject(form, i)
        kind = pdfium_c.FPDFPageObj_GetType(obj)
        if kind in _PICTURE_TYPES:
            return True
        if kind == pdfium_c.FPDF_PAGEOBJ_FORM and _form_has_picture(obj, depth + 1):
            return True
    return False


def _to_device(
    page: pdfium.PdfPage, left: int, width: int, rows: int, x: float, y: float
) -> tuple[int, int]:
    dx, dy = ctypes.c_int(), ctypes.c_int()
    pdfium_c.FPDF_PageToDevice(
        page.raw, left, 0, width, rows, 0, x, y, ctypes.byref(dx), ctypes.byref(dy)
    )
    return dx.value, dy.value
