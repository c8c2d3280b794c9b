"""RFC 3261 17 transactions over an unreliable transport, sans-I/O.

Each transaction is a small state machine that takes messages and ``now`` and puts
datagrams and events into a shared :class:`Outbox`; :mod:`faxline.sip.transaction_layer`
owns them, matches incoming messages to them and exposes the single-timer interface
(``get_timer()`` / ``handle_timer(now)``). The INVITE transactions follow RFC 6026: a 2xx
moves them to *Accepted*, where the client passes 2xx retransmissions to the TU and the
server retransmits its 2xx until the ACK arrives (the UAS core's duty in RFC 3261 13.3.1.4,
kept here because it is timer work).
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass, field

from .headers import Headers
from .message import SipRequest, SipResponse

Address = tuple[str, int]


@dataclass(frozen=True)
class Timers:
    """RFC 3261 timer base values in seconds (Table 4)."""

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0


class State(enum.Enum):
    """Transaction states (RFC 3261 17, with RFC 6026's Accepted)."""

    CALLING = "calling"
    TRYING = "trying"
    PROCEEDING = "proceeding"
    COMPLETED = "completed"
    ACCEPTED = "accepted"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


# Events handed to the transaction user.


@dataclass(frozen=True)
class RequestReceived:
    """A new request created ``transaction``; answer it with ``send_response``."""

    transaction: ServerTransaction
    request: SipRequest
    source: Address


@dataclass(frozen=True)
class CancelReceived:
    """A CANCEL matched ``transaction`` (already answered 200); answer the INVITE 487."""

    transaction: ServerInviteTransaction
    request: SipRequest


@dataclass(frozen=True)
class AckReceived:
    """An ACK for a 2xx (it has its own branch and belongs to the dialog, not a transaction)."""

    request: SipRequest
    source: Address


@dataclass(frozen=True)
class ResponseReceived:
    """A response for ``transaction`` (1xx, every 2xx, the first non-2xx final)."""

    transaction: ClientTransaction
    response: SipResponse


@dataclass(frozen=True)
class StrayResponse:
    """A response that matches no transaction (e.g. a 2xx retransmission after Timer M)."""

    response: SipResponse
    source: Address


@dataclass(frozen=True)
class TransactionTimeout:
    """Timer B/F (no final response) or H (no ACK for our error response) fired."""

    transaction: Transaction


@dataclass(frozen=True)
class AckTimeout:
    """Our 2xx to an INVITE was never acknowledged (RFC 3261 13.3.1.4: send BYE)."""

    transaction: ServerInviteTransaction


@dataclass(frozen=True)
class TransportError:
    """Sending for ``transaction`` failed (reported by the shell)."""

    transaction: Transaction
    reason: str


@dataclass(frozen=True)
class RequestRefused:
    """A new request was answered ``status`` statelessly (a stranger's INVITE)."""

    request: SipRequest
    source: Address
    status: int


@dataclass(frozen=True)
class MessageDropped:
    """A datagram was malformed or unexpected and was dropped (or answered 400)."""

    source: Address
    reason: str


Event = (
    RequestReceived
    | CancelReceived
    | AckReceived
    | ResponseReceived
    | StrayResponse
    | TransactionTimeout
    | AckTimeout
    | TransportError
    | RequestRefused
    | MessageDropped
)


@dataclass
class Outbox:
    """Datagrams to send and events to report, filled by transactions and the layer."""

    datagrams: list[tuple[bytes, Address]] = field(default_factory=list)
    events: deque[Event] = field(default_factory=deque)


class Transaction:
    """What every transaction has: its request, peer, state and named timers."""

    def __init__(self, request: SipRequest, peer: Address, outbox: Outbox, timers: Timers) -> None:
        self.request = request
        self.peer = peer
        self.state = State.TERMINATED
        self._outbox = outbox
        self._timers = timers
        self._deadlines: dict[str, float] = {}

    @property
    def branch(self) -> str:
        """The branch of the request's top Via."""
        return self.request.top_via.branch or ""

    @property
    def terminated(self) -> bool:
        """Whether the transaction is over and can be forgotten."""
        return self.state is State.TERMINATED

    def get_timer(self) -> float | None:
        """The earliest deadline of this transaction's running timers."""
        return min(self._deadlines.values(), default=None)

    def handle_timer(self, now: float) -> None:
        """Fire every timer whose deadline is at or before ``now``, earliest first."""
        while self._deadlines and not self.terminated:
            name, deadline = min(self._deadlines.items(), key=lambda item: item[1])
            if deadline > now:
                return
            del self._deadlines[name]
            self._fire(name, deadline)

    def transport_error(self, reason: str) -> None:
        """The shell could not send for this transaction: end it and tell the TU."""
        if not self.terminated:
            self._terminate()
            self._outbox.events.append(TransportError(self, reason))

    def _fire(self, name: str, deadline: float) -> None:
        raise NotImplementedError

    def _start(self, name: str, deadline: float) -> None:
        self._deadlines[name] = deadline

    def _send(self, message: SipRequest | SipResponse) -> None:
        self._outbox.datagrams.append((bytes(message), self.peer))

    def _terminate(self) -> None:
        self.state = State.TERMINATED
        self._deadlines.clear()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.request.method} {self.branch} {self.state.value}>"


class ClientTransaction(Transaction):
    """Base of the client transactions: the request is sent on creation."""

    def receive_response(self, response: SipResponse, now: float) -> None:
        """Handle a response matched to this transaction."""
        raise NotImplementedError


class ClientInviteTransaction(ClientTransaction):
    """RFC 3261 17.1.1 with RFC 6026 (Timers A, B, D, M)."""

    def __init__(
        self, request: SipRequest, peer: Address, outbox: Outbox, timers: Timers, now: float
    ):
        super().__init__(request, peer, outbox, timers)
        self.state = State.CALLING
        self._interval = timers.t1
        self._ack: bytes | None = None
        self._send(request)
        self._start("A", now + timers.t1)
        self._start("B", now + 64 * timers.t1)

    def receive_response(self, response: SipResponse, now: float) -> None:
        """Handle a response matched to this transaction."""
        status = response.status
        if self.state in (State.CALLING, State.PROCEEDING):
            self._deadlines.pop("A", None)
            self._deadlines.pop("B", None)
            if status < 200:
                self.state = State.PROCEEDING
            elif status < 300:
                self.state = State.ACCEPTED
                self._start("M", now + 64 * self._timers.t1)
            else:
                self.state = State.COMPLETED
                self._ack = bytes(make_ack(self.request, response))
                self._outbox.datagrams.append((self._ack, self.peer))
                self._start("D", now + 32.0)
            self._outbox.events.append(ResponseReceived(self, response))
        elif self.state is State.ACCEPTED and 200 <= status < 300:
            self._outbox.events.append(ResponseReceived(self, response))
        elif self.state is State.COMPLETED and status >= 300 and self._ack is not None:
            self._outbox.datagrams.append((self._ack, self.peer))

    def _fire(self, name: str, deadline: float) -> None:
        if name == "A":
            self._send(self.request)
            self._interval *= 2
            self._start("A", deadline + self._interval)
        elif name == "B":
            self._terminate()
            self._outbox.events.append(TransactionTimeout(self))
        else:  # D, M
            self._terminate()


class ClientNonInviteTransaction(ClientTransaction):
    """RFC 3261 17.1.2 (Timers E, F, K)."""

    def __init__(
        self, request: SipRequest, peer: Address, outbox: Outbox, timers: Timers, now: float
    ):
        super().__init__(request, peer, outbox, timers)
        self.state = State.TRYING
        self._interval = timers.t1
        self._send(request)
        self._start("E", now + timers.t1)
        self._start("F", now + 64 * timers.t1)

    def receive_response(self, response: SipResponse, now: float) -> None:
        """Handle a response matched to this transaction."""
        if self.state not in (State.TRYING, State.PROCEEDING):
            return  # retransmitted final responses are absorbed in Completed
        if response.status < 200:
            self.state = State.PROCEEDING
        else:
            self.state = State.COMPLETED
            self._deadlines.clear()
            self._start("K", now + self._timers.t4)
        self._outbox.events.append(ResponseReceived(self, response))

    def _fire(self, name: str, deadline: float) -> None:
        if name == "E":
            self._send(self.request)
            if self.state is State.TRYING:
                self._interval = min(2 * self._interval, self._timers.t2)
            else:
                self._interval = self._timers.t2
            self._start("E", deadline + self._interval)
        elif name == "F":
            self._terminate()
            self._outbox.events.append(TransactionTimeout(self))
        else:  # K
            self._terminate()


class ServerTransaction(Transaction):
    """Base of the server transactions: created by a request, answered by the TU."""

    def __init__(self, request: SipRequest, peer: Address, outbox: Outbox, timers: Timers) -> None:
        super().__init__(request, peer, outbox, timers)
        self.last_response: SipResponse | None = None

    def receive_request(self, request: SipRequest, now: float) -> None:
        """Handle a retransmission of the request (or, for INVITE, the ACK)."""
        raise NotImplementedError

    def send_response(self, response: SipResponse, now: float) -> None:
        """Send the TU's response and move on accordingly."""
        raise NotImplementedError

    def _check_response(self, response: SipResponse) -> None:
        if self.state not in (State.TRYING, State.PROCEEDING):
            raise ValueError(f"cannot respond in state {self.state.value}")
        if response.status < 100 or response.status > 699:
            raise ValueError(f"bad status {response.status}")


class ServerInviteTransaction(ServerTransaction):
    """RFC 3261 17.2.1 with RFC 6026 (Timers G, H, I, L, and 2xx retransmission)."""

    def __init__(self, request: SipRequest, peer: Address, outbox: Outbox, timers: Timers) -> None:
        super().__init__(request, peer, outbox, timers)
        self.state = State.PROCEEDING
        self._interval = timers.t1
        self.acknowledged = False

    def receive_request(self, request: SipRequest, now: float) -> None:
        """Retransmitted INVITE: repeat the last response; ACK to an error: confirm."""
        if request.method == "ACK":
            if self.state is State.COMPLETED:
                self.state = State.CONFIRMED
                self._deadlines.clear()
                self._start("I", now + self._timers.t4)
            return
        if self.state in (State.PROCEEDING, State.COMPLETED) and self.last_response is not None:
            self._send(self.last_response)

    def send_response(self, response: SipResponse, now: float) -> None:
        """Send a 1xx (stay), 2xx (Accepted, retransmit until ACK) or 3xx-6xx (Completed)."""
        self._check_response(response)
        self.last_response = response
        self._send(response)
        if response.status < 200:
            return
        self._interval = self._timers.t1
        if response.status < 300:
            self.state = State.ACCEPTED
            self._start("2xx", now + self._interval)
            self._start("L", now + 64 * self._timers.t1)
        else:
            self.state = State.COMPLETED
            self._start("G", now + self._interval)
            self._start("H", now + 64 * self._timers.t1)

    def ack_for_2xx(self) -> None:
        """The dialog's ACK arrived: stop retransmitting the 2xx."""
        self.acknowledged = True
        self._deadlines.pop("2xx", None)

    def _fire(self, name: str, deadline: float) -> None:
        if name in ("G", "2xx"):
            assert self.last_response is not None
            self._send(self.last_response)
            self._interval = min(2 * self._interval, self._timers.t2)
            self._start(name, deadline + self._interval)
        elif name == "H":
            self._terminate()
            self._outbox.events.append(TransactionTimeout(self))
        elif name == "L":
            self._terminate()
            if not self.acknowledged:
                self._outbox.events.append(AckTimeout(self))
        else:  # I
            self._terminate()


class ServerNonInviteTransaction(ServerTransaction):
    """RFC 3261 17.2.2 (Timer J)."""

    def __init__(self, request: SipRequest, peer: Address, outbox: Outbox, timers: Timers) -> None:
        super().__init__(request, peer, outbox, timers)
        self.state = State.TRYING

    def receive_request(self, request: SipRequest, now: float) -> None:
        """Retransmitted request: repeat the last response, if any."""
        if self.last_response is not None and self.state in (State.PROCEEDING, State.COMPLETED):
            self._send(self.last_response)

    def send_response(self, response: SipResponse, now: float) -> None:
        """Send a provisional (Proceeding) or final (Completed, Timer J) response."""
        self._check_response(response)
        self.last_response = response
        self._send(response)
        if response.status < 200:
            self.state = State.PROCEEDING
        else:
            self.state = State.COMPLETED
            self._start("J", now + 64 * self._timers.t1)

    def _fire(self, name: str, deadline: float) -> None:
        self._terminate()  # J


def make_ack(invite: SipRequest, response: SipResponse) -> SipRequest:
    """The ACK for a non-2xx final response (RFC 3261 17.1.1.3).

    It reuses the INVITE's Request-URI, top Via (so its branch), Call-ID, From and Route,
    takes To (with the tag) from the response, and carries the INVITE's CSeq number.
    """
    headers = Headers()
    headers.add("Via", invite.headers.get_all("Via")[0])
    headers.add("Max-Forwards", "70")
    for name in ("From",):
        headers.add(name, invite.headers.get(name) or "")
    headers.add("To", response.headers.get("To") or "")
    headers.add("Call-ID", invite.call_id)
    headers.add("CSeq", f"{invite.cseq.seq} ACK")
    for value in invite.headers.get_lines("Route"):
        headers.add("Route", value)
    return SipRequest("ACK", invite.uri, headers)


def make_cancel(invite: SipRequest) -> SipRequest:
    """The CANCEL for a pending INVITE (RFC 3261 9.1): same branch, URI, tags and Route."""
    headers = Headers()
    headers.add("Via", invite.headers.get_all("Via")[0])
    headers.add("Max-Forwards", "70")
    headers.add("From", invite.headers.get("From") or "")
    headers.add("To", invite.headers.get("To") or "")
    headers.add("Call-ID", invite.call_id)
    headers.add("CSeq", f"{invite.cseq.seq} CANCEL")
    for value in invite.headers.get_lines("Route"):
        headers.add("Route", value)
    return SipRequest("CANCEL", invite.uri, headers)
