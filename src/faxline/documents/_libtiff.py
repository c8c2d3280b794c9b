"""Private ctypes binding to the system libtiff (Debian ``libtiff6``).

Only what faxline needs: CCITT G4 coding of one bilevel page, decoding of bilevel pages,
and checking that every strip or tile of a TIFF frame decodes without a fault.
Every handle is opened with its own error handler (libtiff >= 4.5), so messages are
collected per call and nothing is printed on stderr; the callbacks are module globals so
they stay referenced for as long as C may call them. As in ``faxline.fax._spandsp``, the
library is loaded on first use (:func:`lib`), every function is declared with its argument
types and an ``errcheck`` that turns C failures into :class:`LibtiffError`, and variadic
calls go through typed helpers.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import threading
from collections.abc import Callable, Generator, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import numpy.typing as npt

from faxline.documents.errors import ConverterSetupError

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


LIBRARY_NAME = "libtiff.so.6"
DEBIAN_PACKAGE = "libtiff6"

_HANDLER = ctypes.CFUNCTYPE(
    ctypes.c_int,
    ctypes.c_void_p,
    ctypes.c_void_p,
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_void_p,
)


def _check_handle(result: int | None, func: Any, args: tuple[Any, ...]) -> int:
    """``errcheck`` for functions returning a handle: NULL means failure."""
    if not result:
        raise LibtiffError(_last_error(f"{func.__name__} failed"))
    return result


def _check_one(result: int, func: Any, args: tuple[Any, ...]) -> int:
    """``errcheck`` for functions returning 1 on success."""
    if result != 1:
        raise LibtiffError(_last_error(f"{func.__name__} failed"))
    return result


def _check_size(result: int, func: Any, args: tuple[Any, ...]) -> int:
    """``errcheck`` for functions returning a byte count, -1 on failure."""
    if result < 0:
        raise LibtiffError(_last_error(f"{func.__name__} failed"))
    return result


_P = ctypes.c_void_p
_U32 = ctypes.c_uint32
_Checker = Callable[[Any, Any, tuple[Any, ...]], Any] | None
# name: (restype, argtypes, errcheck). TIFFSetField and TIFFGetField are variadic: only
# their fixed arguments are declared, and `_set_field`/`_get_field` pass the rest typed.
_DECLARATIONS: dict[str, tuple[Any, list[Any], _Checker]] = {
    "TIFFOpenOptionsAlloc": (_P, [], _check_handle),
    "TIFFOpenOptionsFree": (None, [_P], None),
    "TIFFOpenOptionsSetErrorHandlerExtR": (None, [_P, _HANDLER, _P], None),
    "TIFFOpenOptionsSetWarningHandlerExtR": (None, [_P, _HANDLER, _P], None),
    "TIFFFdOpenExt": (_P, [ctypes.c_int, ctypes.c_char_p, ctypes.c_char_p, _P], _check_handle),
    "TIFFClose": (None, [_P], None),
    "TIFFWriteEncodedStrip": (ctypes.c_ssize_t, [_P, _U32, _P, ctypes.c_ssize_t], _check_size),
    "TIFFReadEncodedStrip": (ctypes.c_ssize_t, [_P, _U32, _P, ctypes.c_ssize_t], _check_size),
    "TIFFReadEncodedTile": (ctypes.c_ssize_t, [_P, _U32, _P, ctypes.c_ssize_t], _check_size),
    "TIFFStripSize": (ctypes.c_ssize_t, [_P], _check_size),
    "TIFFTileSize": (ctypes.c_ssize_t, [_P], _check_size),
    "TIFFNumberOfTiles": (_U32, [_P], None),
    "TIFFSetDirectory": (ctypes.c_int, [_P, ctypes.c_uint32], _check_one),
    "TIFFNumberOfStrips": (_U32, [_P], None),
    "TIFFIsTiled": (ctypes.c_int, [_P], None),
    "TIFFReadDirectory": (ctypes.c_int, [_P], None),  # 0 at the last page, not an error
    "TIFFGetField": (ctypes.c_int, [_P, _U32], None),  # 0 when the tag is absent
    "TIFFSetField": (ctypes.c_int, [_P, _U32], _check_one),
}


@functools.cache
def lib() -> ctypes.CDLL:
    """Load libtiff once and declare the functions faxline uses.

    Raises :class:`ConverterSetupError` (naming the Debian package) when the library
    cannot be loaded or is older than 4.5 (which added per-handle error handlers).
    """
    path = ctypes.util.find_library("tiff") or LIBRARY_NAME
    try:
        cdll = ctypes.CDLL(path)
    except OSError as exc:
        raise ConverterSetupError(
            f"libtiff ({LIBRARY_NAME}) cannot be loaded: {exc}; "
            f"install the Debian package {DEBIAN_PACKAGE}"
        ) from exc
    for name, (restype, argtypes, errcheck) in _DECLARATIONS.items():
        try:
            func = getattr(cdll, name)
        except AttributeError as exc:
            raise ConverterSetupError(
                f"{path} lacks {name}; faxline needs libtiff 4.5 or newer "
                f"(Debian package {DEBIAN_PACKAGE})"
            ) from exc
        func.restype = restype
        func.argtypes = argtypes
        if errcheck is not None:
            func.errcheck = errcheck
    return cdll


@functools.cache
def _vsnprintf() -> Any:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    func = libc.vsnprintf
    func.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_void_p]
    func.restype = ctypes.c_int
    return func


# Messages of the handle being used on this thread (libtiff calls back synchronously).
_messages = threading.local()


def _collect(tif: Any, user_data: Any, module: bytes | None, fmt: bytes | None, ap: Any) -> int:
    buf = ctypes.create_string_buffer(512)
    if fmt is not None:
        _vsnprintf()(buf, len(buf), fmt, ap)
    text = buf.value.decode("utf-8", "replace")
    prefix = (module or b"").decode("utf-8", "replace")
    message = f"{prefix}: {text}" if prefix else text
    # Errors carry a non-NULL marker; warnings are kept only while a check asks for them
    # (a decoder's warning means the data was damaged and the gap padded).
    found = getattr(_messages, "errors" if user_data else "warnings", None)
    if found is not None:
        found.append(message)
    return 1  # handled: libtiff must not print on stderr


_error_cb = _HANDLER(_collect)
_ERROR_MARK = ctypes.c_void_p(1)


@contextmanager
def _open_fd(fd: int, mode: bytes) -> Iterator[int]:
    """Open ``fd`` (a duplicate is handed to libtiff, which closes it) and yield the handle."""
    tiff = lib()
    options = tiff.TIFFOpenOptionsAlloc()
    tiff.TIFFOpenOptionsSetErrorHandlerExtR(options, _error_cb, _ERROR_MARK)
    tiff.TIFFOpenOptionsSetWarningHandlerExtR(options, _error_cb, None)
    _messages.errors = []
    dup = os.dup(fd)
    try:
        try:
            tif = tiff.TIFFFdOpenExt(dup, b"faxline", mode, options)
        except LibtiffError:
            os.close(dup)
            raise
        try:
            yield tif
        finally:
            tiff.TIFFClose(tif)
    finally:
        tiff.TIFFOpenOptionsFree(options)


def _last_error(default: str) -> str:
    errors: list[str] = getattr(_messages, "errors", None) or []
    if errors:
        return errors[-1]
    warnings: list[str] = getattr(_messages, "warnings", None) or []
    return warnings[0] if warnings else default


def _raise_reported(*, strict: bool = False) -> None:
    """An error (or, when ``strict``, a warning) that libtiff reported through the handler
    while the call itself succeeded."""
    errors: list[str] = getattr(_messages, "errors", None) or []
    if errors:
        raise LibtiffError(errors[-1])
    warnings: list[str] = getattr(_messages, "warnings", None) or []
    if strict and warnings:
        raise LibtiffError(warnings[0])


def _set_field(tif: int, tag: int, value: int) -> None:
    """TIFFSetField for the integer tags faxline writes (all passed as uint32)."""
    lib().TIFFSetField(tif, tag, ctypes.c_uint32(value))


def _get_field(tif: int, tag: int, ctype: type[Any]) -> int | None:
    """TIFFGetField into a `ctype` (the tag's C type); None when the tag is absent."""
    value = ctype()
    if lib().TIFFGetField(tif, tag, ctypes.byref(value)) != 1:
        return None
    return int(value.value)


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
            _set_field(tif, tag, value)
        lib().TIFFWriteEncodedStrip(tif, 0, data.ctypes.data, data.nbytes)
        _raise_reported()
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


_CCITT = frozenset({2, 3, 4})


def read_frames_strictly(
    data: bytes, indices: Iterable[int]
) -> Generator[npt.NDArray[np.bool_] | None]:
    """Decode every strip or tile of the frames ``indices`` (counted from 0) of the TIFF in
    ``data``, treating a decoder's warning as an error (it means the data was damaged and
    the gap padded): :class:`FrameDecodeError` at the first fault.

    Yields, per frame, its pixels (True = black) when it is a striped bilevel CCITT frame,
    so that it need not be decoded a second time, and None for every other frame.
    """
    fd = os.memfd_create("faxline-tiff-check", os.MFD_CLOEXEC)
    try:
        os.write(fd, data)
        os.lseek(fd, 0, os.SEEK_SET)
        with _open_fd(fd, b"r") as tif:
            for index in indices:
                try:
                    lib().TIFFSetDirectory(tif, index)
                    _messages.errors = []  # the directory's complaints are not the pixels'
                    _messages.warnings = []
                    pixels = _strict_frame(tif)
                except LibtiffError as exc:
                    raise FrameDecodeError(index, str(exc)) from None
                finally:
                    _messages.warnings = None
                yield pixels
    finally:
        _messages.warnings = None
        os.close(fd)


class FrameDecodeError(LibtiffError):
    """A frame of the TIFF does not decode fully."""

    def __init__(self, index: int, reason: str) -> None:
        super().__init__(reason)
        self.index = index
        self.reason = reason


def _strict_frame(tif: int) -> npt.NDArray[np.bool_] | None:
    tiff = lib()
    bits = _get_field(tif, TAG_BITSPERSAMPLE, ctypes.c_uint16) or 1
    spp = _get_field(tif, TAG_SAMPLESPERPIXEL, ctypes.c_uint16) or 1
    compression = _get_field(tif, TAG_COMPRESSION, ctypes.c_uint16) or 1
    tiled = bool(tiff.TIFFIsTiled(tif))
    if bits == 1 and spp == 1 and not tiled and compression in _CCITT:
        return _bilevel_frame(tif, strict=True)
    if tiled:
        count, size, read = (
            tiff.TIFFNumberOfTiles(tif),
            tiff.TIFFTileSize(tif),
            tiff.TIFFReadEncodedTile,
        )
    else:
        count, size, read = (
            tiff.TIFFNumberOfStrips(tif),
            tiff.TIFFStripSize(tif),
            tiff.TIFFReadEncodedStrip,
        )
    buf = ctypes.create_string_buffer(max(1, size))
    for chunk in range(count):
        read(tif, chunk, buf, size)
        _raise_reported(strict=True)
    return None


def _bilevel_frame(tif: int, *, strict: bool) -> npt.NDArray[np.bool_]:
    """The current directory's bilevel pixels (True = black)."""
    width = _get_field(tif, TAG_IMAGEWIDTH, ctypes.c_uint32) or 0
    length = _get_field(tif, TAG_IMAGELENGTH, ctypes.c_uint32) or 0
    bits = _get_field(tif, TAG_BITSPERSAMPLE, ctypes.c_uint16) or 1
    spp = _get_field(tif, TAG_SAMPLESPERPIXEL, ctypes.c_uint16) or 1
    photometric = _get_field(tif, TAG_PHOTOMETRIC, ctypes.c_uint16)
    if bits != 1 or spp != 1 or lib().TIFFIsTiled(tif):
        raise LibtiffError("not a bilevel striped page")
    rows_per_strip = _get_field(tif, TAG_ROWSPERSTRIP, ctypes.c_uint32) or length
    stride = (width + 7) // 8
    buf = np.zeros((length, stride), dtype=np.uint8)
    for strip in range(lib().TIFFNumberOfStrips(tif)):
        first = strip * rows_per_strip
        rows = min(rows_per_strip, length - first)
        if rows <= 0:
            break
        lib().TIFFReadEncodedStrip(tif, strip, buf[first:].ctypes.data, rows * stride)
        _raise_reported(strict=strict)
    black = np.unpackbits(buf, axis=1, count=width).astype(np.bool_)
    if photometric == 1:  # min-is-black: a 1 bit is white
        black = ~black
    return black


def _decode_pages(tif: int) -> list[npt.NDArray[np.bool_]]:
    pages: list[npt.NDArray[np.bool_]] = []
    while True:
        pages.append(_bilevel_frame(tif, strict=False))
        if not lib().TIFFReadDirectory(tif):
            _messages.errors = []
            return pages


def decode_page(path: str | os.PathLike[str], index: int) -> npt.NDArray[np.bool_]:
    """Decode the one page ``index`` (counted from 0) of the bilevel TIFF file at ``path``;
    True = black. Only that page is read, so memory is one page's pixels."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        with _open_fd(fd, b"r") as tif:
            lib().TIFFSetDirectory(tif, index)
            _messages.errors = []
            return _bilevel_frame(tif, strict=False)
    finally:
        os.close(fd)
