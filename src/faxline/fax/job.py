"""What one side of a fax call should do: plain, picklable values, validated on creation."""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass

from faxline.fax.errors import FaxOptionError

MAX_IDENT_LEN = 20
"""T.30 limits the TSI/CSI (local ident) to 20 characters."""
MAX_HEADER_LEN = 50
"""SpanDSP's page header line holds at most 50 characters."""


class Direction(enum.Enum):
    """Whether a session sends a document or receives one."""

    SEND = "send"
    RECEIVE = "receive"


def fax_text(text: str | None, limit: int) -> str:
    """`text` cut down to what T.30 can carry: printable ASCII, at most `limit` characters."""
    return "".join(ch for ch in (text or "") if " " <= ch <= "~")[:limit]


def _check_text(name: str, value: str, limit: int) -> None:
    if len(value) > limit:
        raise FaxOptionError(f"{name} is {len(value)} characters long; at most {limit} allowed")
    if not all(" " <= ch <= "~" for ch in value):
        raise FaxOptionError(f"{name} {value!r} must be printable ASCII")


@dataclass(frozen=True)
class FaxJob:
    """One side of a fax call.

    ``path`` is the TIFF to send (``SEND``) or the file to receive into (``RECEIVE``).
    ``ident`` is the local ident sent as TSI (sender) or CSI (receiver); ``header`` is
    the page header line the sender stamps on top of each page. ``fine`` says whether
    the receiving side accepts fine (196 dpi) pages; ``False`` simulates a far end that
    only takes standard resolution. ``superfine`` (391 dpi) likewise, when ``fine``.
    Jobs are plain values, so they pickle across processes; sessions are built from them
    inside the process that runs the call.
    """

    direction: Direction
    path: str
    ident: str = ""
    header: str = ""
    ecm: bool = True
    fine: bool = True
    superfine: bool = True

    def __post_init__(self) -> None:
        _check_text("local ident", self.ident, MAX_IDENT_LEN)
        _check_text("page header", self.header, MAX_HEADER_LEN)
        if not self.path:
            raise FaxOptionError("a fax job needs a file path")
        if self.direction is Direction.RECEIVE and self.header:
            raise FaxOptionError("a page header is only sent by the sending side")

    @classmethod
    def send(
        cls, path: str | os.PathLike[str], *, ident: str = "", header: str = "", ecm: bool = True
    ) -> FaxJob:
        """A job that sends the TIFF at ``path``."""
        return cls(Direction.SEND, os.fspath(path), ident=ident, header=header, ecm=ecm)

    @classmethod
    def receive(
        cls,
        path: str | os.PathLike[str],
        *,
        ident: str = "",
        ecm: bool = True,
        fine: bool = True,
        superfine: bool = True,
    ) -> FaxJob:
        """A job that receives into a new TIFF at ``path``."""
        return cls(
            Direction.RECEIVE, os.fspath(path), ident=ident, ecm=ecm, fine=fine, superfine=superfine
        )
