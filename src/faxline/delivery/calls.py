"""What the dispatcher hands to whoever places a call, and what it gets back.

A call is planned as plain, picklable values: a :class:`LineCall` goes over the in-process
line (to a local extension or a simulated far end, see :mod:`.line`), a :class:`TrunkCall`
through a SIP trunk (the gateway places it). Both are placed by a :class:`CallPlacer`,
which runs the call to its end and says how it went as a :class:`CallOutcome`. Cancelling
``place()`` must stop the call: the dispatcher does that when it loses a delivery's lease
or shuts down.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, TypeVar

from faxline.delivery.policy import Cause, cause_of_t30
from faxline.directory.trunks import TrunkConfig
from faxline.fax.events import FaxResult


@dataclass(frozen=True)
class CallOutcome:
    cause: Cause
    transport: str | None = None
    pages: int = 0
    bit_rate: int | None = None
    ecm: bool | None = None
    bad_rows: int = 0
    remote_ident: str | None = None
    t30_code: int | None = None
    t30_text: str | None = None
    received: str | None = None  # path of what the far end received, if it got a whole fax
    sip_status: int | None = None
    sip_reason: str | None = None
    resolution: str | None = None  # what was sent when finer pages were refused and resent
    # Seconds from the answer to the end of the call; None if it was never answered.
    talk_s: float | None = None


def outcome_of_fax(
    fax: FaxResult,
    transport: str,
    *,
    note: str | None = None,
    far: FaxResult | None = None,
    received: str | None = None,
    sip_status: int | None = None,
    sip_reason: str | None = None,
) -> CallOutcome:
    """The outcome of a call that carried a T.30 session, from the sender's result.

    ``note`` is added to the T.30 text (how the call ended, when that was not normal);
    ``far`` is the receiver's result where we have it (the in-process line), whose count
    of damaged rows is the true one; ``received`` is kept only when the fax was delivered.
    """
    cause = cause_of_t30(fax.completion_code)
    if cause is Cause.DELIVERED and not fax.success:
        cause = Cause.T30_FAILURE
    return CallOutcome(
        cause=cause,
        transport=transport,
        pages=fax.pages,
        bit_rate=fax.bit_rate or None,
        ecm=fax.ecm,
        bad_rows=max(fax.bad_rows, far.bad_rows) if far is not None else fax.bad_rows,
        remote_ident=fax.remote_ident or None,
        t30_code=fax.completion_code,
        t30_text=f"{fax.completion_text} ({note})" if note else fax.completion_text,
        received=received if cause is Cause.DELIVERED else None,
        sip_status=sip_status,
        sip_reason=sip_reason,
    )


@dataclass(frozen=True)
class LineCall:
    """A call over the in-process line, and how its far end behaves."""

    document: str  # TIFF to send
    ident: str  # our TSI
    header: str  # page header line
    ecm: bool
    transport: str  # t38 | audio
    receive_into: str  # where the far end (local extension, simulator) writes what it gets
    far_ident: str
    far_ecm: bool = True
    far_fine: bool = True
    far_superfine: bool = True
    busy: bool = False
    no_answer: bool = False
    hangup_after_page: int | None = None
    lost_audio_blocks: float = 0.0
    lost_packets: float = 0.0
    seed: int = 0
    paced: bool = False
    max_duration_s: float = 1800.0


@dataclass(frozen=True)
class TrunkCall:
    """A call through a SIP trunk to `number` (already in the form the trunk wants)."""

    number: str
    trunk: TrunkConfig
    document: str
    ident: str
    header: str
    caller_id: str | None


CallT_contra = TypeVar("CallT_contra", LineCall, TrunkCall, contravariant=True)


class CallPlacer(Protocol[CallT_contra]):
    """Something that places calls: the in-process line, or the SIP gateway's trunks."""

    async def place(self, call: CallT_contra) -> CallOutcome:
        """Run the call to its end; when cancelled, stop it (hang up) and re-raise."""
        ...
