"""The SIP layer's error tree.

Everything that parses bytes from the network raises one of these, and only these, so the
asyncio shell can catch a single type per wire format, answer 400/488 where SIP allows, or
drop the datagram, and keep listening.
"""

from __future__ import annotations


class SipLayerError(Exception):
    """Base of every error raised by :mod:`faxline.sip`."""


class SipParseError(SipLayerError, ValueError):
    """A SIP message (or one of its header values) is malformed."""


class SdpParseError(SipLayerError, ValueError):
    """A session description is malformed."""


class NotAcceptable(SipLayerError):
    """An SDP offer holds no media we can accept (answer 488 Not Acceptable Here)."""


class RtpParseError(SipLayerError, ValueError):
    """An RTP packet is malformed."""


class UdptlParseError(SipLayerError, ValueError):
    """A UDPTL packet is malformed."""


class DigestError(SipLayerError, ValueError):
    """A digest challenge cannot be parsed or answered."""


class DialogError(SipLayerError):
    """A request does not fit the dialog (e.g. CSeq out of order: answer 500)."""
