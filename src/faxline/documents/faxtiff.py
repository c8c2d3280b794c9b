"""Fax TIFF files: writing (G4 pages in a Class F-like container), reading and checking.

Pages are G4-coded by the system libtiff (fast, and the same library SpanDSP reads with);
the multi-page container is written here so that every page has exactly the tags a fax
transmitter expects: one strip, min-is-white, FillOrder 1, PageNumber n/N, T6Options,
resolution in inches.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from faxline.documents import _libtiff
from faxline.documents.errors import DocumentError
from faxline.documents.model import FAX_WIDTH, X_DPI, Resolution
from faxline.documents.tiffstruct import TiffStructureError, read_frames

__all__ = [
    "EncodedPage",
    "FaxPageInfo",
    "FaxTiffInfo",
    "assemble_fax_tiff",
    "check_fax_tiff",
    "encode_packed",
    "read_fax_tiff",
    "write_fax_tiff",
]

_STRIDE = FAX_WIDTH // 8


@dataclass(frozen=True)
class EncodedPage:
    """One page coded as a single G4 strip."""

    rows: int
    g4: bytes


class FaxPageInfo(NamedTuple):
    width: int
    length: int
    x_dpi: float
    y_dpi: float


@dataclass(frozen=True)
class FaxTiffInfo:
    """What ``check_fax_tiff`` found: the page count and each page's size and resolution."""

    pages: int
    page_info: tuple[FaxPageInfo, ...]


def encode_packed(packed: npt.NDArray[np.uint8]) -> EncodedPage:
    """G4-code a page given as packed bits (rows x 216 bytes, 1 = black, MSB first)."""
    if packed.ndim != 2 or packed.shape[1] != _STRIDE or packed.shape[0] < 1:
        raise ValueError(f"a packed fax page is (rows, {_STRIDE}) bytes, got {packed.shape}")
    single = _libtiff.encode_g4_tiff(packed, FAX_WIDTH)
    frame = read_frames(single)[0]
    offsets, counts = frame.tags[273], frame.tags[279]
    strip = b"".join(single[int(o) : int(o) + int(c)] for o, c in zip(offsets, counts, strict=True))
    return EncodedPage(rows=packed.shape[0], g4=strip)


def _pack(page: npt.NDArray[np.generic]) -> npt.NDArray[np.uint8]:
    if page.ndim != 2 or page.shape[1] != FAX_WIDTH or page.shape[0] < 1:
        raise ValueError(f"a fax page is a 2-D array {FAX_WIDTH} wide, got shape {page.shape}")
    return np.packbits(page.astype(np.bool_, copy=False), axis=1)


def write_fax_tiff(pages: Sequence[npt.NDArray[np.generic]], resolution: Resolution) -> bytes:
    """Write bilevel pages (2-D arrays 1728 wide, True/1 = black) as a multi-page fax TIFF."""
    return assemble_fax_tiff([encode_packed(_pack(page)) for page in pages], resolution)


# (tag, type) of each entry, in ascending tag order as TIFF requires.
_SHORT, _LONG, _RATIONAL = 3, 4, 5


def assemble_fax_tiff(pages: Sequence[EncodedPage], resolution: Resolution) -> bytes:
    """Wrap G4-coded pages in a little-endian multi-page TIFF with fax tags."""
    if not pages:
        raise ValueError("a fax TIFF needs at least one page")
    total = len(pages)
    out = bytearray(b"II*\x00\x00\x00\x00\x00")
    previous_link = 4  # where the offset of the next directory goes
    for number, page in enumerate(pages):
        data_at = len(out)
        out += page.g4
        if len(out) % 2:
            out += b"\x00"
        ifd_at = len(out)
        entries: list[tuple[int, int, int, bytes]] = [
            (254, _LONG, 1, struct.pack("<I", 2)),  # NewSubfileType: one page of many
            (256, _LONG, 1, struct.pack("<I", FAX_WIDTH)),
            (257, _LONG, 1, struct.pack("<I", page.rows)),
            (258, _SHORT, 1, struct.pack("<HH", 1, 0)),
            (259, _SHORT, 1, struct.pack("<HH", 4, 0)),  # CCITT T.6 (G4)
            (262, _SHORT, 1, struct.pack("<HH", 0, 0)),  # min-is-white
            (266, _SHORT, 1, struct.pack("<HH", 1, 0)),  # FillOrder: MSB first
            (273, _LONG, 1, struct.pack("<I", data_at)),
            (277, _SHORT, 1, struct.pack("<HH", 1, 0)),
            (278, _LONG, 1, struct.pack("<I", page.rows)),  # one strip per page
            (279, _LONG, 1, struct.pack("<I", len(page.g4))),
            (282, _RATIONAL, 1, struct.pack("<II", X_DPI, 1)),
            (283, _RATIONAL, 1, struct.pack("<II", resolution.y_dpi, 1)),
            (284, _SHORT, 1, struct.pack("<HH", 1, 0)),
            (293, _LONG, 1, struct.pack("<I", 0)),  # T6Options
            (296, _SHORT, 1, struct.pack("<HH", 2, 0)),  # ResolutionUnit: inch
            (297, _SHORT, 2, struct.pack("<HH", number, total)),  # PageNumber (0-based), N
        ]
        extra_at = ifd_at + 2 + 12 * len(entries) + 4
        table = bytearray(struct.pack("<H", len(entries)))
        extra = bytearray()
        for tag, typ, count, value in entries:
            if len(value) > 4:
                table += struct.pack("<HHII", tag, typ, count, extra_at + len(extra))
                extra += value
            else:
                table += struct.pack("<HHI", tag, typ, count) + value
        struct.pack_into("<I", out, previous_link, ifd_at)
        previous_link = ifd_at + len(table)
        out += table + b"\x00\x00\x00\x00" + extra
    return bytes(out)


def read_fax_tiff(data_or_path: bytes | str | os.PathLike[str]) -> list[npt.NDArray[np.bool_]]:
    """Decode every page of a bilevel TIFF; True = black."""
    data = data_or_path if isinstance(data_or_path, bytes) else Path(data_or_path).read_bytes()
    try:
        return _libtiff.decode_bilevel(data)
    except _libtiff.LibtiffError as exc:
        raise ValueError(f"cannot decode the TIFF: {exc}") from exc


def _near(value: float, targets: Sequence[float]) -> bool:
    return any(abs(value - t) <= t * 0.03 for t in targets)


def check_fax_tiff(path: str | os.PathLike[str]) -> FaxTiffInfo:
    """Check that the TIFF at ``path`` can be transmitted as it is, and describe it.

    Every page must be bilevel, 1728 pixels wide, in strips (not tiles), with resolution
    tags near 204 dpi across and 98, 196 or 391 dpi down, and must decode without error.
    Raises DocumentError naming the file otherwise.
    """
    name = Path(path).name
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise DocumentError(name, f"cannot read the TIFF ({exc.strerror})") from exc
    try:
        frames = read_frames(data)
    except TiffStructureError as exc:
        raise DocumentError(name, str(exc)) from exc
    info: list[FaxPageInfo] = []
    for number, frame in enumerate(frames, start=1):

        def bad(reason: str, number: int = number) -> DocumentError:
            return DocumentError(name, f"page {number}: {reason}")

        if frame.tiled:
            raise bad("the page is tiled, a fax page must be in strips")
        if frame.bits_per_sample != 1 or frame.samples_per_pixel != 1:
            raise bad("the page is not bilevel")
        if frame.photometric not in (0, 1):
            raise bad("the page is not black and white")
        if frame.compression not in (1, 3, 4):
            raise bad("the page is not coded as fax (G3 or G4)")
        if frame.width != FAX_WIDTH:
            raise bad(f"the page is {frame.width} pixels wide, not {FAX_WIDTH}")
        if frame.length < 1:
            raise bad("the page is empty")
        if frame.strips < 1:
            raise bad("the page has no strips")
        dpi = frame.resolution()
        if dpi is None:
            raise bad("the page has no resolution tags")
        if not _near(dpi[0], [X_DPI]) or not _near(dpi[1], [98, 196, 391]):
            raise bad(f"the page's resolution {dpi[0]:g}x{dpi[1]:g} dpi is not a fax resolution")
        info.append(FaxPageInfo(frame.width, frame.length, dpi[0], dpi[1]))
    try:
        _libtiff.decode_bilevel(data)
    except _libtiff.LibtiffError as exc:
        raise DocumentError(name, f"the TIFF does not decode: {exc}") from exc
    return FaxTiffInfo(pages=len(info), page_info=tuple(info))


def resolution_of(y_dpi: float) -> Resolution:
    """The fax resolution a page's vertical dpi stands for (98, 196 or 391, give or take)."""
    return min(Resolution, key=lambda r: abs(r.y_dpi - y_dpi))


def coarser_copy(data: bytes) -> tuple[bytes, Resolution] | None:
    """The fax TIFF ``data`` at the next resolution down (superfine to fine, fine to
    standard) and that resolution; None when its pages are standard or of mixed
    resolutions (then nothing coarser can be made of it).

    Each pair of rows becomes one row, black where either row is black, so that hairlines
    and thin strokes survive the halving; this is the page rendered again one step down,
    at a fraction of the cost of converting the documents anew.
    """
    resolutions = {
        None if r is None else resolution_of(r[1])
        for r in (frame.resolution() for frame in read_frames(data, max_directories=10_000))
    }
    if len(resolutions) != 1:
        return None
    (current,) = resolutions
    coarser = None if current is None else current.coarser
    if coarser is None:
        return None
    pages = read_fax_tiff(data)
    halved: list[npt.NDArray[np.bool_]] = []
    for page in pages:
        rows = page.shape[0] - page.shape[0] % 2
        pair = page[:rows].reshape(rows // 2, 2, page.shape[1])
        halved.append(np.any(pair, axis=1))
    return write_fax_tiff(halved, coarser), coarser
