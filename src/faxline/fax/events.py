"""Events a fax session reports, and its final result."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PhaseB:
    """Capabilities were exchanged (T.30 phase B): the far end is a fax machine.

    ``frame`` is the T.30 frame that triggered it (``DIS`` on the sending side, ``DCS``
    on the receiving side); bit rate and ECM are as negotiated at that moment.
    """

    frame: str
    remote_ident: str
    bit_rate: int
    ecm: bool


@dataclass(frozen=True)
class PageTransferred:
    """A page was sent or received (T.30 phase D).

    ``bad_rows`` counts rows received damaged on this page; without ECM a page can be
    accepted ("OK") and still hold bad rows.
    """

    page: int
    bit_rate: int
    ecm: bool
    bad_rows: int


@dataclass(frozen=True)
class FaxResult:
    """How one side of a call ended.

    ``success`` means SpanDSP reported T.30 completion code 0 ("OK"); check
    ``bad_rows`` as well, since a non-ECM page can be "OK" with damaged rows.
    ``duration_s`` is the simulated time from the session's start to phase E.
    """

    success: bool
    completion_code: int
    completion_text: str
    pages: int
    bit_rate: int
    ecm: bool
    local_ident: str
    remote_ident: str
    bad_rows: int
    duration_s: float

    @property
    def clean(self) -> bool:
        """Success with no damaged rows on any page."""
        return self.success and self.bad_rows == 0


@dataclass(frozen=True)
class Completed:
    """The call ended (T.30 phase E); ``result`` is the session's final result."""

    result: FaxResult


FaxEvent = PhaseB | PageTransferred | Completed
"""Any event a session can report."""
