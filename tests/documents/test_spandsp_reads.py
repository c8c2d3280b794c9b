"""Interop: SpanDSP (which transmits our TIFFs) reads them, and its T.4 coding of our pages
decodes back to exactly our pixels."""

from __future__ import annotations

import ctypes
import ctypes.util
from pathlib import Path

import numpy as np
import pytest
from documents_factory import jpeg

from faxline.documents import InputFile, Resolution, convert_documents
from faxline.documents.faxtiff import read_fax_tiff

END_OF_DATA = -7
T6 = 3
Y_RESOLUTION = {Resolution.SUPERFINE: 15400, Resolution.FINE: 7700, Resolution.STANDARD: 3850}


def _spandsp() -> ctypes.CDLL:
    name = ctypes.util.find_library("spandsp") or "libspandsp.so.2"
    try:
        lib = ctypes.CDLL(name)
    except OSError:
        pytest.skip("libspandsp2 is not installed")
    lib.t4_tx_init.restype = ctypes.c_void_p
    lib.t4_tx_init.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_int]
    lib.t4_rx_init.restype = ctypes.c_void_p
    lib.t4_rx_init.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
    for name in (
        "t4_tx_start_page", "t4_tx_end_page", "t4_tx_get_pages_in_file", "t4_tx_get_image_width",
        "t4_tx_get_y_resolution", "t4_tx_free", "t4_rx_start_page", "t4_rx_end_page", "t4_rx_free",
    ):  # fmt: skip
        getattr(lib, name).argtypes = [ctypes.c_void_p]
    lib.t4_tx_set_tx_encoding.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.t4_tx_get_chunk.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
    lib.t4_rx_put_chunk.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
    for name in ("t4_rx_set_rx_encoding", "t4_rx_set_image_width", "t4_rx_set_y_resolution",
                 "t4_rx_set_x_resolution"):  # fmt: skip
        getattr(lib, name).argtypes = [ctypes.c_void_p, ctypes.c_int]
    return lib


@pytest.mark.parametrize("resolution", list(Resolution))
def test_spandsp_sends_our_pages_unchanged(tmp_path: Path, resolution: Resolution) -> None:
    lib = _spandsp()
    files = [InputFile("a.txt", "Grüße\fzweite Seite".encode()), InputFile(None, jpeg())]
    document = convert_documents(files, resolution=resolution)
    assert document.tiff is not None
    sent, received = tmp_path / "sent.tif", tmp_path / "received.tif"
    sent.write_bytes(document.tiff)

    tx = lib.t4_tx_init(None, str(sent).encode(), -1, -1)
    assert tx, "SpanDSP could not open the TIFF"
    assert lib.t4_tx_get_pages_in_file(tx) == 3
    assert lib.t4_tx_get_image_width(tx) == 1728
    assert lib.t4_tx_get_y_resolution(tx) == Y_RESOLUTION[resolution]
    lib.t4_tx_set_tx_encoding(tx, T6)
    rx = lib.t4_rx_init(None, str(received).encode(), T6)
    assert rx
    lib.t4_rx_set_rx_encoding(rx, T6)
    lib.t4_rx_set_image_width(rx, 1728)
    lib.t4_rx_set_x_resolution(rx, 8031)
    lib.t4_rx_set_y_resolution(rx, Y_RESOLUTION[resolution])
    chunk = ctypes.create_string_buffer(65536)
    try:
        for _ in range(3):
            assert lib.t4_tx_start_page(tx) == 0
            assert lib.t4_rx_start_page(rx) == 0
            while True:
                length = lib.t4_tx_get_chunk(tx, chunk, len(chunk))
                if length > 0:
                    lib.t4_rx_put_chunk(rx, chunk, length)
                if length < len(chunk):
                    break
            lib.t4_tx_end_page(tx)
            lib.t4_rx_end_page(rx)
    finally:
        lib.t4_tx_free(tx)
        lib.t4_rx_free(rx)
    ours, theirs = read_fax_tiff(document.tiff), read_fax_tiff(received)
    assert len(theirs) == 3
    for a, b in zip(ours, theirs, strict=True):
        assert np.array_equal(a, b)
