"""Fax over SIP: media endpoints (RTP G.711, UDPTL T.38) and the call flows.

:func:`send_fax` places a call and sends a document, :func:`receive_fax` answers one and
receives; both switch to T.38 by re-INVITE as their :class:`T38Mode` says, and return a
:class:`SipFaxResult` instead of raising for anything the far end does. Modules, cores
first: :mod:`.policy` (which SDP to offer and accept, pure), :mod:`.streams` (sans-I/O RTP
and UDPTL streams feeding SpanDSP sessions, and the media watchdog), :mod:`.media` (one
call's media: the running stream, backlog, latching, sans-I/O), :mod:`.flow` (one call's
flow over the SIP user agent core, sans-I/O), then the asyncio shell: :mod:`.clock` (one
media clock per event loop, the sockets) and :mod:`.faxcall` (the entry points; its
docstring describes the flows). :mod:`.results`, :mod:`.errors`.
"""

from faxline.telephony.clock import MediaClock
from faxline.telephony.errors import MediaSetupError, TelephonyError
from faxline.telephony.faxcall import receive_fax, send_fax
from faxline.telephony.results import Ending, SipFaxResult, T38Mode

__all__ = [
    "Ending",
    "MediaClock",
    "MediaSetupError",
    "SipFaxResult",
    "T38Mode",
    "TelephonyError",
    "receive_fax",
    "send_fax",
]
