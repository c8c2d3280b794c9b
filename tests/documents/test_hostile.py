"""Damaged files: conversion either succeeds or raises DocumentError, nothing else."""

from __future__ import annotations

import contextlib
import io

import pytest
from documents_factory import jpeg, photo, text_pdf, tiff
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
