"""Private ctypes binding to the system libtiff (Debian ``libtiff6``).

Only what faxline needs: CCITT G4 coding of one bilevel page and decoding of bilevel pages.
Every handle is opened with its own error handler (libtiff >= 4.5), so messages are
collected per call and nothing is printed on stderr; the callbacks are module globals so
they stay referenced for as long as C may call them.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import numpy.typing as npt

TAG_IMAGEWIDTH = 256
TAG_IMAGELENGTH = 257
TAG_BITSPERSAMPLE = 258
TAG_COMPRESSION = 259
TAG_PHOTOMETRIC = 262
TAG_FILLORDER = 266
TAG_SAMPLESPERPIXEL = 277
TAG_ROWSPERSTRIP = 278
TAG_PLANARCONFIG = 284
TAG_T6OPTIONS = 293
COMPRESSION_CCITTFAX4 = 4
PHOTOMETRIC_MINISWHITE = 0


class LibtiffError(Exception):
    """libtiff reported an error; the message is libtiff's own."""


def _load() -> ctypes.CDLL:
    name = ctypes.util.find_library("tiff") or "libtiff.so.6"
    try:
        return ctypes.CDLL(name)
    except OSError:
        return ctypes.CDLL("libtiff.so.6")


_lib = _load()
_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
_libc.vsnprintf.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_void_p]
_libc.vsnprintf.restype = ctypes.c_int

_HANDLER = ctypes.CFUNCTYPE(
    ctypes.c_int,
    ctypes.c_void_p,
    ctypes.c_void_p,
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_void_p,
)

_lib.TIFFOpenOptionsAlloc.argtypes = []
_lib.TIFFOpenOptionsAlloc.restype = ctypes.c_void_p
_lib.TIFFOpenOptionsFree.argtypes = [ctypes.c_void_p]
_lib.TIFFOpenOptionsFree.restype = None
_lib.TIFFOpenOptionsSetErrorHandlerExtR.argtypes = [ctypes.c_void_p, _HANDLER, ctypes.c_void_p]
_lib.TIFFOpenOptionsSetErrorHandlerExtR.restype = None
_lib.TIFFOpenOptionsSetWarningHandlerExtR.argtypes = [ctypes.c_void_p, _HANDLER, ctypes.c_void_p]
_lib.TIFFOpenOptionsSetWarningHandlerExtR.restype = None
_lib.TIFFFdOpenExt.argtypes = [
    ctypes.c_int,
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_void_p,
]
_lib.TIFFFdOpenExt.restype = ctypes.c_void_p
_lib.TIFFClose.argtypes = [ctypes.c_void_p]
_lib.TIFFClose.restype = None
_lib.TIFFWriteEncodedStrip.argtypes = [
    ctypes.c_void_p,
    ctypes.c_uint32,
    ctypes.c_void_p,
    ctypes.c_ssize_t,
]
_lib.TIFFWriteEncodedStrip.restype = ctypes.c_ssize_t
_lib.TIFFReadEncodedStrip.argtypes = [
    ctypes.c_void_p,
    ctypes.c_uint32,
    ctypes.c_void_p,
    ctypes.c_ssize_t,
]
_lib.TIFFReadEncodedStrip.restype = ctypes.c_ssize_t
_lib.TIFFNumberOfStrips.argtypes = [ctypes.c_void_p]
_lib.TIFFNumberOfStrips.restype = ctypes.c_uint32
_lib.TIFFIsTiled.argtypes = [ctypes.c_void_p]
_lib.TIFFIsTiled.restype = ctypes.c_int
_lib.TIFFReadDirectory.argtypes = [ctypes.c_void_p]
_lib.TIFFReadDirectory.restype = ctypes.c_int
_lib.TIFFGetField.restype = ctypes.c_int
_lib.TIFFSetField.restype = ctypes.c_int

# Messages of the handle being used on this thread (libtiff calls back synchronously).
_messages = threading.local()


def _collect(tif: Any, user_data: Any, module: bytes | None, fmt: bytes | None, ap: Any) -> int:
    buf = ctypes.create_string_buffer(512)
    if fmt is not None:
        _libc.vsnprintf(buf, len(buf), fmt, ap)
    text = buf.value.decode("utf-8", "replace")
    prefix = (module or b"").decode("utf-8", "replace")
    if user_data:  # errors carry a non-NULL marker, warnings are dropped
        errors = getattr(_messages, "errors", None)
        if errors is not None:
            errors.append(f"{prefix}: {text}" if prefix else text)
    return 1  # handled: libtiff must not print on stderr


_error_cb = _HANDLER(_collect)
_ERROR_MARK = ctypes.c_void_p(1)


@contextmanager
def _open_fd(fd: int, mode: bytes) -> Iterator[int]:
    """Open ``fd`` (a duplicate is handed to libtiff, which closes it) and yield the handle."""
    options = _lib.TIFFOpenOptionsAlloc()
    _lib.TIFFOpenOptionsSetErrorHandlerExtR(options, _error_cb, _ERROR_MARK)
    _lib.TIFFOpenOptionsSetWarningHandlerExtR(options, _error_cb, None)
    _messages.errors = []
    dup = os.dup(fd)
    try:
        tif = _lib.TIFFFdOpenExt(dup, b"faxline", mode, options)
        if not tif:
            os.close(dup)
            raise LibtiffError(_last_error("cannot open the TIFF"))
        try:
            yield tif
        finally:
            _lib.TIFFClose(tif)
    finally:
        _lib.TIFFOpenOptionsFree(options)


def _last_error(default: str) -> str:
    errors: list[str] = getattr(_messages, "errors", None) or []
    return errors[-1] if errors else default


def _check(ok: bool, default: str) -> None:
    errors: list[str] = getattr(_messages, "errors", None) or []
    if not ok or errors:
        raise LibtiffError(errors[-1] if errors else default)


def _u32(value: int) -> ctypes.c_uint32:
    return ctypes.c_uint32(value)


def encode_g4_tiff(packed: npt.NDArray[np.uint8], width: int) -> bytes:
    """Code one page of packed bits (1 = black, MSB first) as a single-strip G4 TIFF file."""
    rows = packed.shape[0]
    data = np.ascontiguousarray(packed, dtype=np.uint8)
    fd = os.memfd_create("faxline-g4", os.MFD_CLOEXEC)
    try:
        return _encode_into(fd, data, rows, width)
    finally:
        os.close(fd)


def _encode_into(fd: int, data: npt.NDArray[np.uint8], rows: int, width: int) -> bytes:
    with _open_fd(fd, b"w") as tif:
        for tag, value in (
            (TAG_IMAGEWIDTH, width),
            (TAG_IMAGELENGTH, rows),
            (TAG_BITSPERSAMPLE, 1),
            (TAG_SAMPLESPERPIXEL, 1),
            (TAG_COMPRESSION, COMPRESSION_CCITTFAX4),
            (TAG_PHOTOMETRIC, PHOTOMETRIC_MINISWHITE),
            (TAG_FILLORDER, 1),
            (TAG_PLANARCONFIG, 1),
            (TAG_ROWSPERSTRIP, rows),
            (TAG_T6OPTIONS, 0),
        ):
            _check(_lib.TIFFSetField(ctypes.c_void_p(tif), _u32(tag), _u32(value)) == 1, "set")
        written = _lib.TIFFWriteEncodedStrip(tif, 0, data.ctypes.data, data.nbytes)
        _check(written >= 0, "cannot encode the page")
    size = os.fstat(fd).st_size
    return os.pread(fd, size, 0)


def decode_bilevel(data: bytes) -> list[npt.NDArray[np.bool_]]:
    """Decode every page of a bilevel TIFF held in ``data``; True = black."""
    fd = os.memfd_create("faxline-tiff-read", os.MFD_CLOEXEC)
    try:
        os.write(fd, data)
        os.lseek(fd, 0, os.SEEK_SET)
        with _open_fd(fd, b"r") as tif:
            return _decode_pages(tif)
    finally:
        os.close(fd)


def _field(tif: int, tag: int, ctype: type[Any]) -> int | None:
    value = ctype()
    if _lib.TIFFGetField(ctypes.c_void_p(tif), _u32(tag), ctypes.byref(value)) != 1:
        return None
    return int(value.value)


def _decode_pages(tif: int) -> list[npt.NDArray[np.bool_]]:
    pages: list[npt.NDArray[np.bool_]] = []
    while True:
        width = _field(tif, TAG_IMAGEWIDTH, ctypes.c_uint32) or 0
        length = _field(tif, TAG_IMAGELENGTH, ctypes.c_uint32) or 0
        bits = _field(tif, TAG_BITSPERSAMPLE, ctypes.c_uint16) or 1
        spp = _field(tif, TAG_SAMPLESPERPIXEL, ctypes.c_uint16) or 1
        photometric = _field(tif, TAG_PHOTOMETRIC, ctypes.c_uint16)
        if bits != 1 or spp != 1 or _lib.TIFFIsTiled(tif):
            raise LibtiffError("not a bilevel striped page")
        rows_per_strip = _field(tif, TAG_ROWSPERSTRIP, ctypes.c_uint32) or length
        stride = (width + 7) // 8
        buf = np.zeros((length, stride), dtype=np.uint8)
        for strip in range(_lib.TIFFNumberOfStrips(tif)):
            first = strip * rows_per_strip
            rows = min(rows_per_strip, length - first)
            if rows <= 0:
                break
            got = _lib.TIFFReadEncodedStrip(
                tif, strip, buf[first:].ctypes.data, ctypes.c_ssize_t(rows * stride)
            )
            _check(got >= 0, "cannot decode the page")
        bits_array = np.unpackbits(buf, axis=1, count=width).astype(np.bool_)
        if photometric == 1:  # min-is-black: a 1 bit is white
            bits_array = ~bits_array
        pages.append(bits_array)
        if not _lib.TIFFReadDirectory(tif):
            _messages.errors = []
            return pages
