"""Helpers for the fax engine tests: pages with real content, TIFF patching, page comparison."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import numpy.typing as npt

from faxline.documents.faxtiff import read_fax_tiff

Page = npt.NDArray[np.bool_]
PAGE_ROWS = 2200


def _glyphs(rng: np.random.Generator, count: int = 64) -> list[Page]:
    # Stroke-built 16x24 "letters": text-like content that codes to a realistic size.
    glyphs = []
    for _ in range(count):
        glyph = np.zeros((24, 16), dtype=np.bool_)
        for _ in range(int(rng.integers(2, 5))):
            if rng.random() < 0.5:
                x, y0, y1 = (
                    int(rng.integers(0, 13)),
                    int(rng.integers(0, 12)),
                    int(rng.integers(12, 24)),
                )
                glyph[y0:y1, x : x + 3] = True
            else:
                y, x0, x1 = (
                    int(rng.integers(0, 21)),
                    int(rng.integers(0, 8)),
                    int(rng.integers(8, 16)),
                )
                glyph[y : y + 3, x0:x1] = True
        glyphs.append(glyph)
    return glyphs


def make_pages(count: int, seed: int = 0, rows: int = PAGE_ROWS) -> list[Page]:
    """Pages of random "text" lines plus a block of random noise, different on each page."""
    rng = np.random.default_rng(seed)
    glyphs = _glyphs(rng)
    pages = []
    for number in range(count):
        page = np.zeros((rows, 1728), dtype=np.bool_)
        for y in range(120, rows - 400, 48):
            x, end = 120, int(rng.integers(900, 1600))
            while x < end:
                if rng.random() >= 0.18:  # otherwise a space
                    page[y : y + 24, x : x + 16] |= glyphs[int(rng.integers(len(glyphs)))]
                x += 18
        y0, x0 = rows - 300, 200 + 150 * number
        page[y0 : y0 + 96, x0 : x0 + 128] = rng.random((96, 128)) < 0.5
        pages.append(page)
    return pages


def set_long_tag(data: bytes, tag: int, value: int) -> bytes:
    """Rewrite an inline LONG tag of every directory of a little-endian TIFF."""
    out = bytearray(data)
    (offset,) = struct.unpack_from("<I", out, 4)
    while offset:
        (count,) = struct.unpack_from("<H", out, offset)
        for i in range(count):
            entry = offset + 2 + 12 * i
            if struct.unpack_from("<H", out, entry)[0] == tag:
                struct.pack_into("<I", out, entry + 8, value)
        (offset,) = struct.unpack_from("<I", out, offset + 2 + 12 * count)
    return bytes(out)


def assert_pages_equal(received: Path, sent: list[Page], header_rows: int = 0) -> None:
    """The received TIFF holds ``sent`` pixel for pixel, below ``header_rows`` added rows."""
    got = read_fax_tiff(received)
    assert len(got) == len(sent)
    for number, (page, original) in enumerate(zip(got, sent, strict=True), start=1):
        assert page.shape == (original.shape[0] + header_rows, original.shape[1]), number
        assert np.array_equal(page[header_rows:], original), f"page {number} differs"
