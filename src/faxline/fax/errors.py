"""The fax engine's error tree.

Everything the fax layer raises derives from :class:`FaxError`. Callers above (the
dispatcher, the API) read :attr:`FaxError.permanent` to decide whether retrying the same
job can help: a bad document or a bad ident never gets better by retrying.
"""

from __future__ import annotations


class FaxError(Exception):
    """Base of every error raised by :mod:`faxline.fax`."""

    permanent: bool = False


class FaxEngineUnavailable(FaxError):
    """SpanDSP (Debian package ``libspandsp2``) is missing or unusable on this machine."""


class SpanDSPError(FaxError):
    """A SpanDSP call reported failure (a negative status or a NULL pointer)."""


class FaxOptionError(FaxError, ValueError):
    """A session option is invalid (ident longer than 20 characters, header over 50, ...)."""

    permanent = True


class FaxDocumentError(FaxError, ValueError):
    """The TIFF to send is not a valid fax document (wrong width, tiled, no resolution)."""

    permanent = True


class FaxSessionClosed(FaxError):
    """The session was used after :meth:`close` released its SpanDSP state."""
