"""Page geometry and gray-to-bilevel conversion (threshold for text, clustered dots for photos)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from faxline.documents.model import FAX_WIDTH, X_DPI, Resolution

MAX_PAGE_INCHES = 17.0
"""Pages longer than this (a little over A3/Tabloid) are scaled down to fit."""


@dataclass(frozen=True)
class Placement:
    """Where content goes on a fax page: ``width`` x ``rows`` pixels at column ``left``."""

    width: int
    rows: int
    left: int


def place(width_in: float, height_in: float, resolution: Resolution) -> Placement:
    """Place content of the given physical size on a fax page.

    Content keeps its physical size when it fits the 1728-pixel width, otherwise it is
    scaled down (keeping its aspect) to fit; absurdly long content is scaled down to
    ``MAX_PAGE_INCHES``. The page is as long as the content.
    """
    width = width_in * X_DPI
    rows = height_in * resolution.y_dpi
    scale = 1.0
    if width > FAX_WIDTH:
        scale = FAX_WIDTH / width
    max_rows = MAX_PAGE_INCHES * resolution.y_dpi
    if rows * scale > max_rows:
        scale = max_rows / rows
    w = max(1, min(FAX_WIDTH, round(width * scale)))
    r = max(1, round(rows * scale))
    return Placement(width=w, rows=r, left=(FAX_WIDTH - w) // 2)


def place_fit_width(px_width: int, px_height: int, resolution: Resolution) -> Placement:
    """Place an image of unknown physical size: full width, square pixels kept square."""
    return place(FAX_WIDTH / X_DPI, px_height / px_width * FAX_WIDTH / X_DPI, resolution)


def _clustered_dot(period: int = 8) -> npt.NDArray[np.uint8]:
    # A 45-degree screen from the classic cosine spot function: dots grow from the cell's
    # darkest points, so runs stay long and G4 codes them compactly.
    y, x = np.mgrid[0:period, 0:period] + 0.5
    spot = np.cos(2 * np.pi * x / period) + np.cos(2 * np.pi * y / period)
    tiebreak = (x * 0.001 + y * 0.0001).ravel()
    order = np.lexsort((tiebreak, spot.ravel()))
    ranks = np.empty(period * period, dtype=np.float64)
    ranks[order] = np.arange(period * period)
    return (1 + (ranks + 0.5) * 254 / (period * period)).astype(np.uint8).reshape(period, period)


_SCREEN = _clustered_dot()


def dither(gray: npt.NDArray[np.uint8]) -> npt.NDArray[np.bool_]:
    """Clustered-dot ordered dither: photos as halftone dots that G4 codes compactly."""
    h, w = gray.shape
    p = _SCREEN.shape[0]
    screen = np.tile(_SCREEN, (-(-h // p), -(-w // p)))[:h, :w]
    return gray < screen


def dither_box(
    bits: npt.NDArray[np.bool_], gray: npt.NDArray[np.uint8], box: tuple[int, int, int, int]
) -> None:
    """Dither the box ``(x0, y0, x1, y1)`` of ``gray`` into ``bits``, screen aligned to the page."""
    x0, y0, x1, y1 = box
    p = _SCREEN.shape[0]
    screen = np.tile(_SCREEN, (-(-y1 // p), -(-x1 // p)))[y0:y1, x0:x1]
    bits[y0:y1, x0:x1] = gray[y0:y1, x0:x1] < screen


def pack(bits: npt.NDArray[np.bool_]) -> npt.NDArray[np.uint8]:
    """Pack a 1728-wide page into rows of 216 bytes, MSB first, 1 = black."""
    return np.packbits(bits, axis=1)
