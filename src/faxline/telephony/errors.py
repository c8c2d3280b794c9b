"""The telephony layer's error tree.

Call outcomes (busy, no answer, a vanished far end, a refused T.38 switch) are not errors:
they come back as :class:`~faxline.telephony.results.SipFaxResult` values. What is raised
is what stops a call from being attempted at all on this machine.
"""

from __future__ import annotations


class TelephonyError(Exception):
    """Base of every error raised by :mod:`faxline.telephony`.

    ``permanent`` says whether retrying the same fax can help (as in the fax layer).
    """

    permanent: bool = False


class MediaSetupError(TelephonyError):
    """The RTP/UDPTL sockets for a call could not be opened (address in use, bad host)."""
