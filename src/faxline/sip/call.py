"""What the user agent core keeps per call and per request: plain state, no I/O.

These handles are created by :class:`~faxline.sip.agent.UserAgentCore` and named in its
events; the application reads them and passes them back to the core's commands
(``accept(incoming, ...)``, ``reinvite(call, ...)``). They compare by identity.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from .dialog import Dialog
from .digest import Credentials
from .errors import SipLayerError
from .message import SipRequest, SipResponse
from .sdp import SessionDescription
from .transaction import Address, ClientTransaction, ServerInviteTransaction

ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS"


class CallFailed(SipLayerError):
    """A request got a final error response, or none (``status`` 408 then).

    ``timed_out``: an INVITE nobody answered within its answer timeout (so a 487 is only
    the echo of our own CANCEL).
    """

    def __init__(self, status: int, reason: str, *, timed_out: bool = False) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason
        self.timed_out = timed_out


@dataclass(eq=False)
class Call:
    """An established call: a confirmed (or, as UAS, early-confirmed) INVITE dialog.

    ``peer`` is where in-dialog requests go. ``confirmed`` is set once the dialog is
    confirmed both ways (at once as UAC; on the ACK as UAS). ``reinvite`` is our pending
    re-INVITE, if any (then the peer's gets 491).
    """

    dialog: Dialog
    peer: Address
    local_sdp: SessionDescription
    remote_sdp: SessionDescription | None
    confirmed: bool = False
    ended: bool = False
    end_reason: str | None = None
    last_ack: SipRequest | None = None
    invite_transaction: ServerInviteTransaction | None = None
    reinvite: OutgoingInvite | None = None


@dataclass(eq=False)
class OutgoingInvite:
    """An INVITE we sent: a new call (``call`` None) or a re-INVITE of ``call``.

    ``deadline`` is when a ringing call is cancelled (and, after the CANCEL, when we stop
    waiting for its final answer). ``abandoned``: nobody waits for it any more; a 2xx that
    still comes is ACKed and hung up at once.
    """

    invite: SipRequest
    peer: Address
    offer: SessionDescription
    call: Call | None
    outbound_proxy: Address | None
    credentials: Credentials | None
    transaction: ClientTransaction
    deadline: float | None
    attempt: int = 1
    provisional: bool = False
    cancelled: bool = False
    timed_out: bool = False
    abandoned: bool = False
    done: bool = False


@dataclass(eq=False)
class OutgoingRequest:
    """A non-INVITE request we sent (OPTIONS, REGISTER, BYE)."""

    request: SipRequest
    peer: Address
    credentials: Credentials | None
    transaction: ClientTransaction
    call: Call | None = None
    attempt: int = 1
    done: bool = False


@dataclass(eq=False)
class IncomingInvite:
    """An INVITE that starts a new call, not answered yet.

    ``offer`` is None for a late offer (answer with an offer; the ACK brings the answer).
    ``cancelled`` once the caller's CANCEL came (the core has answered 487 then).
    """

    transaction: ServerInviteTransaction
    request: SipRequest
    offer: SessionDescription | None
    source: Address
    local_tag: str
    cancelled: bool = False
    answered: bool = False


@dataclass(eq=False)
class IncomingReInvite:
    """A re-INVITE from the peer of ``call`` (e.g. the switch to T.38), not answered yet."""

    call: Call
    transaction: ServerInviteTransaction
    request: SipRequest
    offer: SessionDescription | None
    answered: bool = field(default=False)


def peer_of(dialog: Dialog, source: Address) -> Address:
    """Where in-dialog requests go: the next hop if it is an IP address, else the source."""
    next_hop = dialog.route_set[0].uri if dialog.route_set else dialog.remote_target
    host, port = next_hop.host_port()
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return source
    return host, port


class Calls:
    """The calls whose dialog we hold, by dialog id (Call-ID and both tags)."""

    def __init__(self) -> None:
        self._by_id: dict[tuple[str, str, str], Call] = {}

    def add(self, call: Call) -> None:
        """Keep ``call``: messages of its dialog now find it."""
        self._by_id[call.dialog.id] = call

    def remove(self, call: Call) -> None:
        """Forget ``call`` (its dialog is over)."""
        if self._by_id.get(call.dialog.id) is call:
            del self._by_id[call.dialog.id]

    def for_request(self, request: SipRequest) -> Call | None:
        """The call a request from the peer belongs to."""
        key = (request.call_id, request.to.tag or "", request.from_.tag or "")
        return self._by_id.get(key)

    def for_response(self, response: SipResponse) -> Call | None:
        """The call a response to one of our requests belongs to."""
        key = (response.call_id, response.from_.tag or "", response.to.tag or "")
        return self._by_id.get(key)

    def __len__(self) -> int:
        return len(self._by_id)
