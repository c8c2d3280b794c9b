"""Damaged files: conversion either succeeds or raises DocumentError, nothing else."""

from __future__ import annotations

import contextlib
import io

import pytest
from documents_factory import (
    g4_strip,
    halve_strips,
    jpeg,
    jpeg_without_scan_data,
    photo,
    raw_tiff,
    text_pdf,
    tiff,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from faxline.documents import ConversionLimits, DocumentError, InputFile, convert_documents
from faxline.documents.tiffstruct import TiffStructureError, read_frames

SMALL = ConversionLimits(max_pages=5, max_pixels=2_000_000)


def _samples() -> dict[str, bytes]:
    small = photo(120, 90)
    out = io.BytesIO()
    small.convert("1").save(out, "TIFF", compression="group4", dpi=(204, 196))
    return {
        "lzw.tif": tiff([small, small.convert("P")], compression="tiff_lzw"),
        "g4.tif": out.getvalue(),
        "photo.jpg": jpeg(),
        "doc.pdf": text_pdf(1),
    }


SAMPLES = _samples()


@st.composite
def damaged(draw: st.DrawFn) -> tuple[str, bytes]:
    name = draw(st.sampled_from(sorted(SAMPLES)))
    data = bytearray(SAMPLES[name])
    if draw(st.booleans()):
        del data[draw(st.integers(8, len(data) - 1)) :]
    for _ in range(draw(st.integers(1, 8))):
        at = draw(st.integers(4, len(data) - 1))
        data[at] = draw(st.integers(0, 255))
    return name, bytes(data)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(damaged())
def test_damaged_files_fail_cleanly(case: tuple[str, bytes]) -> None:
    name, data = case
    try:
        convert_documents([InputFile(name, data)], limits=SMALL)
    except DocumentError as exc:
        assert str(exc).startswith(f"{name}: ")


@given(st.binary(max_size=512).map(lambda tail: b"II*\x00" + tail))
def test_tiff_structure_reader_never_raises_anything_else(data: bytes) -> None:
    with contextlib.suppress(TiffStructureError):
        read_frames(data, max_directories=50)


def test_tiff_loop_is_refused() -> None:
    looped = b"II*\x00\x08\x00\x00\x00" + b"\x00\x00" + b"\x08\x00\x00\x00"
    with pytest.raises(TiffStructureError, match="loop"):
        read_frames(looped)


def _refused(name: str, data: bytes, reason: str) -> str:
    with pytest.raises(DocumentError) as caught:
        convert_documents([InputFile(name, data)])
    assert str(caught.value).startswith(f"{name}: {reason}"), caught.value
    return str(caught.value)


def test_jpeg_that_declares_a_huge_image_and_holds_no_data() -> None:
    data = jpeg_without_scan_data(8000, 8000)  # 64 MP: just within the pixel limit
    assert len(data) < 400
    _refused("tiny.jpg", data, "the image is corrupt or truncated")


@pytest.mark.parametrize(
    "save",
    [{}, {"progressive": True}, {"mode": "L"}, {"mode": "CMYK"}],
    ids=["baseline", "progressive", "gray", "cmyk"],
)
def test_jpeg_cut_short_then_closed_with_an_end_marker(save: dict[str, object]) -> None:
    mode = str(save.pop("mode", "RGB"))
    whole = jpeg(mode, **save)
    convert_documents([InputFile("whole.jpg", whole)])  # the intact file is fine
    cut = whole[: len(whole) * 2 // 3] + b"\xff\xd9"
    _refused("cut.jpg", cut, "the image is corrupt or truncated")


def _page_strip() -> tuple[int, int, bytes]:
    page = photo(400, 300).convert("1")
    return page.width, page.height, g4_strip(page)


def test_tiff_with_a_g4_strip_cut_short_names_the_page() -> None:
    width, length, strip = _page_strip()
    good = (width, length, 4, strip)
    convert_documents([InputFile("fine.tif", raw_tiff([good, good]))])
    cut = raw_tiff([good, (width, length, 4, strip[: len(strip) // 2])])
    message = _refused("cut.tif", cut, "page 2 is corrupt or truncated")
    assert "Premature" in message


@pytest.mark.parametrize("compression", ["jpeg", "group3", "group4"])
def test_tiff_whose_strips_are_cut_short(compression: str) -> None:
    page = photo(400, 300)
    whole = tiff([page.convert("1") if compression.startswith("group") else page],
                 compression=compression)  # fmt: skip
    convert_documents([InputFile("whole.tif", whole)])
    _refused("cut.tif", halve_strips(whole), "page 1 is corrupt or truncated")
