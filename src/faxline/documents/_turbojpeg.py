"""Private ctypes binding to the system TurboJPEG library (Debian ``libturbojpeg0``).

Only one thing is needed from it: whether a JPEG decodes *fully*. Pillow's JPEG decoder
silences libjpeg's warnings, so a file whose scan data is missing or cut short (libjpeg
then pads the image with gray) reads as a good image; TurboJPEG reports those warnings.
The decoding here is at 1/8 scale: every coefficient is still entropy-decoded, so every
fault of the data is seen, but the inverse DCT and the output are 64 times smaller.

As in ``_libtiff``, the library is loaded on first use and every function is declared
with its argument types; every handle is created and destroyed by the one call that
uses it, so nothing is shared between threads.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from typing import Any

from faxline.documents.errors import ConverterSetupError

LIBRARY_NAME = "libturbojpeg.so.0"
DEBIAN_PACKAGE = "libturbojpeg0"

_TJPF_GRAY = 6
_TJPF_CMYK = 11
_TJCS_CMYK, _TJCS_YCCK = 3, 4
# Stop at the first warning; refuse progressive files of more than 500 scans (a CPU bomb);
# the fast DCT and upsampling, since the pixels of this pass are thrown away.
_FLAGS = 8192 | 32768 | 2048 | 256
_SCALE = 8


class JpegDecodeError(Exception):
    """The JPEG does not decode fully; the message is libjpeg's own."""


_P = ctypes.c_void_p
_INT_P = ctypes.POINTER(ctypes.c_int)
_DECLARATIONS: dict[str, tuple[Any, list[Any]]] = {
    "tjInitDecompress": (_P, []),
    "tjDestroy": (ctypes.c_int, [_P]),
    "tjDecompressHeader3": (
        ctypes.c_int,
        [_P, ctypes.c_char_p, ctypes.c_ulong, _INT_P, _INT_P, _INT_P, _INT_P],
    ),
    "tjDecompress2": (
        ctypes.c_int,
        [
            _P,
            ctypes.c_char_p,
            ctypes.c_ulong,
            _P,
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_int,
        ],
    ),
    "tjGetErrorStr2": (ctypes.c_char_p, [_P]),
    "tjGetErrorCode": (ctypes.c_int, [_P]),
}


@functools.cache
def lib() -> ctypes.CDLL:
    """Load TurboJPEG once; ConverterSetupError (naming the Debian package) if it is missing."""
    path = ctypes.util.find_library("turbojpeg") or LIBRARY_NAME
    try:
        cdll = ctypes.CDLL(path)
    except OSError as exc:
        raise ConverterSetupError(
            f"TurboJPEG ({LIBRARY_NAME}) cannot be loaded: {exc}; "
            f"install the Debian package {DEBIAN_PACKAGE}"
        ) from exc
    for name, (restype, argtypes) in _DECLARATIONS.items():
        try:
            func = getattr(cdll, name)
        except AttributeError as exc:
            raise ConverterSetupError(
                f"{path} lacks {name}; install the Debian package {DEBIAN_PACKAGE}"
            ) from exc
        func.restype = restype
        func.argtypes = argtypes
    return cdll


def check_decodes(data: bytes) -> None:
    """Decode the whole JPEG (at 1/8 scale); JpegDecodeError at its first fault or warning."""
    tj = lib()
    handle = tj.tjInitDecompress()
    if not handle:
        raise MemoryError("tjInitDecompress failed")
    try:
        width, height, subsampling, colorspace = (ctypes.c_int() for _ in range(4))
        if tj.tjDecompressHeader3(handle, data, len(data), width, height, subsampling, colorspace):
            raise JpegDecodeError(_message(handle))
        scaled_w = -(-width.value // _SCALE)
        scaled_h = -(-height.value // _SCALE)
        cmyk = colorspace.value in (_TJCS_CMYK, _TJCS_YCCK)
        pixel_format, pixel_size = (_TJPF_CMYK, 4) if cmyk else (_TJPF_GRAY, 1)
        out = ctypes.create_string_buffer(max(1, scaled_w * scaled_h * pixel_size))
        if tj.tjDecompress2(
            handle, data, len(data), out, scaled_w, 0, scaled_h, pixel_format, _FLAGS
        ):
            raise JpegDecodeError(_message(handle))
    finally:
        tj.tjDestroy(handle)


def _message(handle: int) -> str:
    raw = lib().tjGetErrorStr2(handle) or b"the JPEG cannot be decoded"
    return bytes(raw).decode("utf-8", "replace")
