"""Fax TIFF to PDF without decoding: the pages open in pdfium and Ghostscript and show the
TIFF's pixels exactly, at the TIFF's resolution."""

from __future__ import annotations

import io
import struct
import subprocess
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pypdfium2 as pdfium
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from faxline.documents import _libtiff
from faxline.documents.faxtiff import EncodedPage, assemble_fax_tiff, read_fax_tiff, write_fax_tiff
from faxline.documents.model import FAX_WIDTH, Resolution
from faxline.documents.pdfexport import (
    CcittImage,
    PdfExportError,
    PdfPage,
    fax_tiff_pdf,
    pdf_chunks,
)
from faxline.documents.tiffstruct import read_frames
from pdfrender import render_black


def _page(rows: int, width: int, seed: int) -> npt.NDArray[np.bool_]:
    """Bars and boxes that differ per seed: G4 codes them small, as it does text."""
    rng = np.random.default_rng(seed)
    page = np.zeros((rows, width), dtype=np.bool_)
    for _ in range(12):
        top, left = int(rng.integers(0, rows)), int(rng.integers(0, width))
        page[top : top + int(rng.integers(1, 40)), left : left + int(rng.integers(1, 300))] = True
    return page


def _g4_image(page: npt.NDArray[np.bool_]) -> CcittImage:
    single = _libtiff.encode_g4_tiff(np.packbits(page, axis=1), page.shape[1])
    frame = read_frames(single)[0]
    start, count = int(frame.tags[273][0]), int(frame.tags[279][0])
    return CcittImage(page.shape[1], page.shape[0], single[start : start + count])


def _export(tmp_path: Path, tiff: bytes) -> bytes:
    path = tmp_path / "fax.tif"
    path.write_bytes(tiff)
    return b"".join(fax_tiff_pdf(path))


def _assert_same_pages(pdf: bytes, pages: list[npt.NDArray[np.bool_]]) -> None:
    document = pdfium.PdfDocument(pdf)
    try:
        assert len(document) == len(pages)
        for number, expected in enumerate(pages):
            got = render_black(document[number], expected.shape[1], expected.shape[0])
            assert np.array_equal(got, expected), f"page {number + 1} differs"
    finally:
        document.close()


def _ghostscript_pages(tmp_path: Path, pdf: bytes) -> None:
    path = tmp_path / "out.pdf"
    path.write_bytes(pdf)
    result = subprocess.run(
        ["gs", "-q", "-dNOPAUSE", "-dBATCH", "-dPDFSTOPONERROR", "-o", "/dev/null",
         "-sDEVICE=nullpage", str(path)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0 and not result.stderr, result.stderr


@pytest.mark.parametrize("resolution", list(Resolution))
def test_fax_pages_copied_exactly(tmp_path: Path, resolution: Resolution) -> None:
    pages = [_page(rows, FAX_WIDTH, rows) for rows in (1100, 40, 2300)]
    tiff = write_fax_tiff(pages, resolution)
    pdf = _export(tmp_path, tiff)
    _assert_same_pages(pdf, pages)
    _ghostscript_pages(tmp_path, pdf)
    # No decoding: every page's G4 strip is in the PDF byte for byte.
    for frame in read_frames(tiff):
        offset, count = int(frame.tags[273][0]), int(frame.tags[279][0])
        assert tiff[offset : offset + count] in pdf
    # The page has the paper's size: 1728 dots at 204 dpi across, rows at y dpi down.
    document = pdfium.PdfDocument(pdf)
    width, height = document[2].get_size()
    document.close()
    assert width == pytest.approx(FAX_WIDTH / 204 * 72, abs=0.01)
    assert height == pytest.approx(2300 / resolution.y_dpi * 72, abs=0.01)


@pytest.mark.parametrize(
    ("compression", "info", "copied"),
    [
        ("group4", {262: 0, 278: 500}, True),  # G4 in one strip, min-is-white: copied
        ("group4", {278: 64, 262: 0}, False),  # in 8 strips: re-encoded
        ("group4", {278: 100}, False),  # Pillow's min-is-black: re-encoded
        ("group3", {}, False),
        ("tiff_lzw", {}, False),
    ],
)
def test_pages_not_in_one_g4_strip(
    tmp_path: Path, compression: str, info: dict[int, int], copied: bool
) -> None:
    page = _page(500, FAX_WIDTH, 7)
    out = io.BytesIO()
    Image.fromarray(~page).convert("1").save(
        out, "TIFF", compression=compression, dpi=(204, 196), tiffinfo=info
    )
    tiff = out.getvalue()
    frame = read_frames(tiff)[0]
    pdf = _export(tmp_path, tiff)
    _assert_same_pages(pdf, read_fax_tiff(tiff))
    _ghostscript_pages(tmp_path, pdf)
    offset, count = int(frame.tags[273][-1]), int(frame.tags[279][-1])
    assert (tiff[offset : offset + count] in pdf) is copied


@settings(max_examples=25)
@given(
    sizes=st.lists(st.tuples(st.integers(1, 700), st.integers(1, 400)), min_size=1, max_size=6),
    seed=st.integers(0, 2**16),
)
def test_writer_round_trips_through_pdfium(sizes: list[tuple[int, int]], seed: int) -> None:
    """Random page sizes and counts: each page renders as the pixels given."""
    expected = [_page(rows, width, seed + n) for n, (width, rows) in enumerate(sizes)]
    # At 72 dpi a pixel is a point.
    pages = [PdfPage(float(p.shape[1]), float(p.shape[0]), _g4_image(p)) for p in expected]
    _assert_same_pages(b"".join(pdf_chunks(pages)), expected)


def test_malformed_tiff_fails_before_any_byte(tmp_path: Path) -> None:
    path = tmp_path / "bad.tif"
    path.write_bytes(b"II*\x00\xff\xff\x00\x00")
    chunks = fax_tiff_pdf(path)
    with pytest.raises(PdfExportError, match="outside the file"):
        next(chunks)


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"{field} not in /proc/self/status")


def test_memory_does_not_grow_with_the_file(tmp_path: Path) -> None:
    """A 200-page TIFF of 60 MB (strips of filler: they are copied, never decoded) is
    exported with a peak RSS of about one page: not the pages, nor the file mapped."""
    filler = bytes(range(256)) * 1172  # 300 kB a page
    tiff = assemble_fax_tiff([EncodedPage(rows=2292, g4=filler)] * 200, Resolution.FINE)
    path = tmp_path / "big.tif"
    path.write_bytes(tiff)
    del tiff
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM, the peak RSS
    before = _status_kib("VmRSS")
    size = sum(len(chunk) for chunk in fax_tiff_pdf(path))
    added_mib = (_status_kib("VmHWM") - before) / 1024
    assert size > 200 * len(filler)
    assert added_mib < 10, f"the export added {added_mib:.0f} MiB"


def test_fill_order_2_is_reversed_not_decoded(tmp_path: Path) -> None:
    """FillOrder 2 (least significant bit first) pages are copied with their bits turned."""
    pages = [_page(600, FAX_WIDTH, 3)]
    tiff = bytearray(write_fax_tiff(pages, Resolution.FINE))
    entry = struct.pack("<HHIHH", 266, 3, 1, 1, 0)
    assert tiff.count(entry) == 1
    at = tiff.index(entry)
    tiff[at : at + len(entry)] = struct.pack("<HHIHH", 266, 3, 1, 2, 0)
    frame = read_frames(bytes(tiff))[0]
    offset, count = int(frame.tags[273][0]), int(frame.tags[279][0])
    msb_first = bytes(tiff[offset : offset + count])
    reverse = bytes(int(f"{b:08b}"[::-1], 2) for b in range(256))
    tiff[offset : offset + count] = msb_first.translate(reverse)
    assert np.array_equal(read_fax_tiff(bytes(tiff))[0], pages[0])  # libtiff agrees
    pdf = _export(tmp_path, bytes(tiff))
    assert msb_first in pdf
    _assert_same_pages(pdf, pages)
