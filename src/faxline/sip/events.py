"""What the user agent core reports: small frozen events, each about one handle.

Every event names the handle (:mod:`faxline.sip.call`) it concerns; :func:`subject` says
which, so that a shell can route the events of one call to whoever owns that call.
"""

from __future__ import annotations

from dataclasses import dataclass

from .call import Call, IncomingInvite, IncomingReInvite, OutgoingInvite, OutgoingRequest
from .message import SipResponse
from .sdp import SessionDescription
from .transaction import MessageDropped, RequestRefused


@dataclass(frozen=True)
class NewCall:
    """An INVITE started a new call: ``ring``, ``accept`` or ``reject`` it."""

    incoming: IncomingInvite


@dataclass(frozen=True)
class CallCancelled:
    """The caller cancelled ``incoming`` before it was answered (we answered 487)."""

    incoming: IncomingInvite


@dataclass(frozen=True)
class CallProgress:
    """A provisional answer (180, 183...) to our INVITE."""

    invite: OutgoingInvite
    status: int


@dataclass(frozen=True)
class CallAnswered:
    """Our INVITE was answered 2xx and ACKed: ``call`` is established."""

    invite: OutgoingInvite
    call: Call


@dataclass(frozen=True)
class InviteFailed:
    """Our INVITE failed: an error answer, none at all (408), or an unusable 2xx.

    ``timed_out``: nobody answered within the answer timeout (we cancelled, and a 487 is
    only the echo of our CANCEL).
    """

    invite: OutgoingInvite
    status: int
    reason: str
    timed_out: bool = False


@dataclass(frozen=True)
class CallConfirmed:
    """The ACK for our 2xx arrived (its SDP, if any, is in ``call.remote_sdp``)."""

    call: Call


@dataclass(frozen=True)
class ReInviteReceived:
    """The peer re-INVITEs: ``accept_reinvite`` or ``reject_reinvite`` it."""

    reinvite: IncomingReInvite


@dataclass(frozen=True)
class ReInviteAnswered:
    """Our re-INVITE with ``offer`` was accepted with ``answer`` (and ACKed)."""

    call: Call
    offer: SessionDescription
    answer: SessionDescription


@dataclass(frozen=True)
class ReInviteFailed:
    """Our re-INVITE with ``offer`` was refused (491 on glare) or not answered (408)."""

    call: Call
    offer: SessionDescription
    status: int
    reason: str


@dataclass(frozen=True)
class CallEnded:
    """``call`` is over; ``reason`` is ``"bye"`` (remote), ``"local"`` or ``"no ack"``."""

    call: Call
    reason: str


@dataclass(frozen=True)
class RequestAnswered:
    """A final answer (any status) to our OPTIONS, REGISTER or BYE."""

    request: OutgoingRequest
    response: SipResponse


@dataclass(frozen=True)
class RequestTimedOut:
    """No final answer to our request (Timer F), or it could not be sent."""

    request: OutgoingRequest
    reason: str


UaEvent = (
    NewCall
    | CallCancelled
    | CallProgress
    | CallAnswered
    | InviteFailed
    | CallConfirmed
    | ReInviteReceived
    | ReInviteAnswered
    | ReInviteFailed
    | CallEnded
    | RequestAnswered
    | RequestTimedOut
    | RequestRefused
    | MessageDropped
)

Handle = Call | OutgoingInvite | OutgoingRequest | IncomingInvite


def subject(event: UaEvent) -> Handle | None:
    """The handle an event is about: the call for in-dialog events (a BYE's answer too)."""
    if isinstance(event, (NewCall, CallCancelled)):
        return event.incoming
    if isinstance(event, (CallProgress, CallAnswered, InviteFailed)):
        return event.invite
    if isinstance(event, ReInviteReceived):
        return event.reinvite.call
    if isinstance(event, (CallConfirmed, ReInviteAnswered, ReInviteFailed, CallEnded)):
        return event.call
    if isinstance(event, (RequestAnswered, RequestTimedOut)):
        return event.request.call or event.request
    return None
