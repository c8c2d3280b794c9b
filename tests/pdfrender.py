"""Rendering PDF pages with pdfium at an exact pixel size, to compare with TIFF pages."""

from __future__ import annotations

import ctypes

import numpy as np
import numpy.typing as npt
import pypdfium2 as pdfium
import pypdfium2.raw as raw


def render_black(page: pdfium.PdfPage, width: int, height: int) -> npt.NDArray[np.bool_]:
    """The page drawn on `width` x `height` pixels (x and y scaled apart, as fax pixels are
    not square), without image smoothing; True = black."""
    bitmap = raw.FPDFBitmap_Create(width, height, 0)
    try:
        raw.FPDFBitmap_FillRect(bitmap, 0, 0, width, height, 0xFFFFFFFF)
        page_width, page_height = page.get_size()
        matrix = raw.FS_MATRIX(width / page_width, 0, 0, height / page_height, 0, 0)
        clip = raw.FS_RECTF(0, 0, width, height)
        raw.FPDF_RenderPageBitmapWithMatrix(
            bitmap, page.raw, ctypes.byref(matrix), ctypes.byref(clip),
            raw.FPDF_RENDER_NO_SMOOTHIMAGE,
        )  # fmt: skip
        stride = raw.FPDFBitmap_GetStride(bitmap)
        data = ctypes.string_at(raw.FPDFBitmap_GetBuffer(bitmap), stride * height)
    finally:
        raw.FPDFBitmap_Destroy(bitmap)
    pixels = np.frombuffer(data, np.uint8).reshape(height, stride)[:, : width * 4]
    result: npt.NDArray[np.bool_] = pixels.reshape(height, width, 4)[:, :, 1] < 128
    return result
