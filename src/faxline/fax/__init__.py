"""The fax engine: T.30 sessions over audio and T.38 on SpanDSP, and an in-process line.

Sessions are sans-I/O: they consume audio samples or IFP packets and a clock measured in
samples, and produce samples, packets and events. The SpanDSP binding is private.
"""

from faxline.fax.audio import AudioFaxSession
from faxline.fax.errors import (
    FaxDocumentError,
    FaxEngineUnavailable,
    FaxError,
    FaxOptionError,
    FaxSessionClosed,
    SpanDSPError,
)
from faxline.fax.events import Completed, FaxEvent, FaxResult, PageTransferred, PhaseB
from faxline.fax.g711 import Codec
from faxline.fax.job import MAX_HEADER_LEN, MAX_IDENT_LEN, Direction, FaxJob
from faxline.fax.line import (
    Call,
    CallResult,
    Ending,
    Impairments,
    Side,
    Transport,
    run_call,
    run_call_paced,
)
from faxline.fax.session import SAMPLE_RATE, FaxSession
from faxline.fax.t38 import IfpPacket, T38FaxSession

__all__ = [
    "MAX_HEADER_LEN",
    "MAX_IDENT_LEN",
    "SAMPLE_RATE",
    "AudioFaxSession",
    "Call",
    "CallResult",
    "Codec",
    "Completed",
    "Direction",
    "Ending",
    "FaxDocumentError",
    "FaxEngineUnavailable",
    "FaxError",
    "FaxEvent",
    "FaxJob",
    "FaxOptionError",
    "FaxResult",
    "FaxSession",
    "FaxSessionClosed",
    "IfpPacket",
    "Impairments",
    "PageTransferred",
    "PhaseB",
    "Side",
    "SpanDSPError",
    "T38FaxSession",
    "Transport",
    "run_call",
    "run_call_paced",
]
