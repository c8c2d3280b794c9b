"""Private ctypes binding to SpanDSP 0.0.6 (Debian ``libspandsp2``).

Only the functions faxline uses are declared. Every SpanDSP state is opaque: it is
allocated by ``*_init(NULL, ...)`` and released by ``*_free``; the one structure laid out
here is ``t30_stats_t``. C return codes become :class:`SpanDSPError` in one place
(:func:`_check_status` / :func:`_check_pointer`), installed as ``errcheck`` on the
declarations. Nothing outside :mod:`faxline.fax` may import this module.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from collections.abc import Callable
from typing import Any

from faxline.fax.errors import FaxEngineUnavailable, SpanDSPError

LIBRARY_NAME = "libspandsp.so.2"
DEBIAN_PACKAGE = "libspandsp2"

# The C callback types. Python code that passes one of these to C must keep the object
# referenced for as long as the C state can call it (see FaxSession).
PhaseBHandler = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int)
PhaseDHandler = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int)
PhaseEHandler = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int)
# The packet buffer arrives as a plain address (c_void_p): cheaper than a pointer object.
T38TxPacketHandler = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_int
)
MessageHandler = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_char_p)

# t30.h enums (values checked against the 0.0.6 headers).
T30_ERR_OK = 0
T30_ERR_CALLDROPPED = 49
T30_SUPPORT_T4_1D_COMPRESSION = 0x01 << 1
T30_SUPPORT_T4_2D_COMPRESSION = 0x01 << 2
T30_SUPPORT_T6_COMPRESSION = 0x01 << 3
T30_SUPPORT_STANDARD_RESOLUTION = 0x01
T30_SUPPORT_FINE_RESOLUTION = 0x02
T30_SUPPORT_SUPERFINE_RESOLUTION = 0x04
T30_SUPPORT_R8_RESOLUTION = 0x20000
T30_SUPPORT_R16_RESOLUTION = 0x40000
# logging.h
SPAN_LOG_SHOW_TAG = 0x2000
SPAN_LOG_SHOW_PROTOCOL = 0x0800
SPAN_LOG_SHOW_SEVERITY = 0x0400
# g711.h
G711_ALAW = 0
G711_ULAW = 1


class T30Stats(ctypes.Structure):
    """``t30_stats_t`` from t30.h (15 ints in 0.0.6)."""

    _fields_ = [
        ("bit_rate", ctypes.c_int),
        ("error_correcting_mode", ctypes.c_int),
        ("pages_tx", ctypes.c_int),
        ("pages_rx", ctypes.c_int),
        ("pages_in_file", ctypes.c_int),
        ("x_resolution", ctypes.c_int),
        ("y_resolution", ctypes.c_int),
        ("width", ctypes.c_int),
        ("length", ctypes.c_int),
        ("image_size", ctypes.c_int),
        ("encoding", ctypes.c_int),
        ("bad_rows", ctypes.c_int),
        ("longest_bad_row_run", ctypes.c_int),
        ("error_correcting_mode_retries", ctypes.c_int),
        ("current_status", ctypes.c_int),
    ]


def _check_status(result: int, func: Any, args: tuple[Any, ...]) -> int:
    """``errcheck`` for functions returning an int status: negative means failure."""
    if result < 0:
        raise SpanDSPError(f"{func.__name__} failed with status {result}")
    return result


def _check_pointer(result: int | None, func: Any, args: tuple[Any, ...]) -> int:
    """``errcheck`` for constructors and getters returning a pointer: NULL means failure."""
    if not result:
        raise SpanDSPError(f"{func.__name__} returned NULL")
    return result


_P = ctypes.c_void_p
_I = ctypes.c_int
_STR = ctypes.c_char_p
_SAMPLES = ctypes.POINTER(ctypes.c_int16)
_BYTES = ctypes.POINTER(ctypes.c_uint8)

# name: (restype, argtypes, errcheck)
_Checker = Callable[[Any, Any, tuple[Any, ...]], Any] | None
_DECLARATIONS: dict[str, tuple[Any, list[Any], _Checker]] = {
    # fax.h: T.30 over audio
    "fax_init": (_P, [_P, _I], _check_pointer),
    "fax_free": (_I, [_P], _check_status),
    "fax_rx": (_I, [_P, _SAMPLES, _I], _check_status),
    "fax_rx_fillin": (_I, [_P, _I], _check_status),
    "fax_tx": (_I, [_P, _SAMPLES, _I], _check_status),
    "fax_set_transmit_on_idle": (None, [_P, _I], None),
    "fax_get_t30_state": (_P, [_P], _check_pointer),
    "fax_get_logging_state": (_P, [_P], _check_pointer),
    # t38_terminal.h / t38_core.h: T.30 over T.38
    "t38_terminal_init": (_P, [_P, _I, T38TxPacketHandler, _P], _check_pointer),
    "t38_terminal_free": (_I, [_P], _check_status),
    "t38_terminal_send_timeout": (_I, [_P, _I], None),
    "t38_terminal_get_t30_state": (_P, [_P], _check_pointer),
    "t38_terminal_get_t38_core_state": (_P, [_P], _check_pointer),
    "t38_terminal_get_logging_state": (_P, [_P], _check_pointer),
    # const uint8_t *buf declared as char *: Python bytes pass without a copy.
    "t38_core_rx_ifp_packet": (_I, [_P, _STR, _I, ctypes.c_uint16], _check_status),
    "t38_core_get_logging_state": (_P, [_P], _check_pointer),
    # t30_api.h / t30.h
    "t30_set_tx_ident": (_I, [_P, _STR], _check_status),
    "t30_get_rx_ident": (_STR, [_P], None),
    "t30_set_tx_page_header_info": (_I, [_P, _STR], _check_status),
    "t30_set_tx_file": (None, [_P, _STR, _I, _I], None),
    "t30_set_rx_file": (None, [_P, _STR, _I], None),
    "t30_set_ecm_capability": (_I, [_P, _I], _check_status),
    "t30_set_supported_compressions": (_I, [_P, _I], _check_status),
    "t30_set_supported_resolutions": (_I, [_P, _I], _check_status),
    "t30_set_phase_b_handler": (None, [_P, PhaseBHandler, _P], None),
    "t30_set_phase_d_handler": (None, [_P, PhaseDHandler, _P], None),
    "t30_set_phase_e_handler": (None, [_P, PhaseEHandler, _P], None),
    "t30_get_transfer_statistics": (None, [_P, ctypes.POINTER(T30Stats)], None),
    "t30_get_logging_state": (_P, [_P], _check_pointer),
    "t30_terminate": (None, [_P], None),
    "t30_call_active": (_I, [_P], None),
    # t30_logging.h
    "t30_completion_code_to_str": (_STR, [_I], None),
    "t30_frametype": (_STR, [ctypes.c_uint8], None),
    # logging.h
    "span_log_set_level": (_I, [_P, _I], _check_status),
    "span_log_set_tag": (_I, [_P, _STR], _check_status),
    "span_log_set_message_handler": (None, [_P, MessageHandler], None),
    # g711.h (used to cross-check faxline.fax.g711)
    "g711_init": (_P, [_P, _I], _check_pointer),
    "g711_free": (_I, [_P], _check_status),
    "g711_encode": (_I, [_P, _BYTES, _SAMPLES, _I], _check_status),
    "g711_decode": (_I, [_P, _SAMPLES, _BYTES, _I], _check_status),
}


@functools.cache
def lib() -> ctypes.CDLL:
    """Load SpanDSP once and declare the functions faxline uses.

    Raises :class:`FaxEngineUnavailable` (naming the Debian package) when the shared
    library cannot be found or lacks a function.
    """
    path = ctypes.util.find_library("spandsp") or LIBRARY_NAME
    try:
        cdll = ctypes.CDLL(path)
    except OSError as exc:
        raise FaxEngineUnavailable(
            f"SpanDSP ({LIBRARY_NAME}) cannot be loaded: {exc}; "
            f"install the Debian package {DEBIAN_PACKAGE}"
        ) from exc
    for name, (restype, argtypes, errcheck) in _DECLARATIONS.items():
        try:
            func = getattr(cdll, name)
        except AttributeError as exc:
            raise FaxEngineUnavailable(
                f"{path} lacks {name}; faxline needs SpanDSP 0.0.6 "
                f"(Debian package {DEBIAN_PACKAGE})"
            ) from exc
        func.restype = restype
        func.argtypes = argtypes
        if errcheck is not None:
            func.errcheck = errcheck
    return cdll


def completion_text(code: int) -> str:
    """The text SpanDSP gives for a T.30 completion code."""
    text: bytes | None = lib().t30_completion_code_to_str(code)
    return text.decode("ascii", "replace") if text else f"T.30 completion code {code}"


def frame_name(fcf: int) -> str:
    """The name of a T.30 frame type (``DIS``, ``DCS``, ...)."""
    text: bytes | None = lib().t30_frametype(fcf & 0xFF)
    return text.decode("ascii", "replace") if text else f"0x{fcf:02X}"
