"""The transaction layer: matches datagrams to transactions (RFC 3261 17.1.3, 17.2.3).

Sans-I/O in the aioquic manner: feed it ``receive_datagram(data, source, now)`` and
``handle_timer(now)``; take ``datagrams_to_send()``, ``next_event()`` and ``get_timer()``.
Malformed datagrams never raise: a request that still has the headers a response needs is
answered 400, anything else is dropped, and a :class:`MessageDropped` event says why.

With an :class:`~faxline.sip.admission.Admission`, every new request (and every 400 we
would send for a malformed one) is screened before a server transaction exists: it may be
dropped (its source is over its rate) or, for a stranger's INVITE, answered once without
a transaction. Requests that ``exempt`` names (those in a dialog the user agent holds) and
CANCELs of a pending INVITE are not screened.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from .admission import Admission, Screening
from .errors import SipParseError
from .headers import BRANCH_MAGIC, Headers
from .message import SipRequest, SipResponse, make_response, parse_message
from .transaction import (
    AckReceived,
    Address,
    CancelReceived,
    ClientInviteTransaction,
    ClientNonInviteTransaction,
    ClientTransaction,
    Event,
    MessageDropped,
    Outbox,
    RequestReceived,
    RequestRefused,
    ServerInviteTransaction,
    ServerNonInviteTransaction,
    ServerTransaction,
    State,
    StrayResponse,
    Timers,
    Transaction,
)

ServerKey = tuple[str, ...]


class TransactionLayer:
    """Owns every live transaction of one UDP socket."""

    def __init__(
        self,
        timers: Timers | None = None,
        *,
        send_trying: bool = True,
        admission: Admission | None = None,
        exempt: Callable[[SipRequest], bool] | None = None,
    ) -> None:
        self.timers = timers or Timers()
        self.send_trying = send_trying
        self.admission = admission
        self.exempt = exempt
        self._outbox = Outbox()
        self._clients: dict[tuple[str, str], ClientTransaction] = {}
        self._servers: dict[ServerKey, ServerTransaction] = {}

    # Output side.

    def datagrams_to_send(self) -> list[tuple[bytes, Address]]:
        """Take the datagrams queued since the last call."""
        datagrams, self._outbox.datagrams = self._outbox.datagrams, []
        return datagrams

    def next_event(self) -> Event | None:
        """Take the next event for the transaction user, if any."""
        events = self._outbox.events
        return events.popleft() if events else None

    @property
    def has_output(self) -> bool:
        """Whether datagrams or events are queued."""
        return bool(self._outbox.datagrams or self._outbox.events)

    def get_timer(self) -> float | None:
        """The earliest deadline of any transaction (arm one timer for it)."""
        deadlines = [t.get_timer() for t in self._all()]
        return min((d for d in deadlines if d is not None), default=None)

    def handle_timer(self, now: float) -> None:
        """Fire every due timer."""
        for transaction in self._all():
            transaction.handle_timer(now)
        self._collect()

    # Sending.

    def send_request(
        self, request: SipRequest, destination: Address, now: float
    ) -> ClientTransaction:
        """Start a client transaction for ``request`` (which must have a fresh branch).

        ACK is not sent through a transaction: use :meth:`send_stateless`.
        """
        if request.method == "ACK":
            raise ValueError("an ACK is not a transaction; use send_stateless")
        branch = request.top_via.branch
        if not branch or not branch.startswith(BRANCH_MAGIC):
            raise ValueError("the request needs an RFC 3261 branch in its top Via")
        key = (branch, request.method)
        if key in self._clients:
            raise ValueError(f"branch {branch} is already in use for {request.method}")
        transaction: ClientTransaction
        if request.method == "INVITE":
            transaction = ClientInviteTransaction(
                request, destination, self._outbox, self.timers, now
            )
        else:
            transaction = ClientNonInviteTransaction(
                request, destination, self._outbox, self.timers, now
            )
        self._clients[key] = transaction
        return transaction

    def send_response(
        self, transaction: ServerTransaction, response: SipResponse, now: float
    ) -> None:
        """Send the TU's response through its server transaction."""
        transaction.send_response(response, now)
        self._collect()

    def send_stateless(self, message: SipRequest | SipResponse, destination: Address) -> None:
        """Send outside any transaction (ACK for a 2xx, its retransmissions)."""
        self._outbox.datagrams.append((bytes(message), destination))

    def transport_error(self, destination: Address, reason: str) -> None:
        """The shell failed to send to ``destination``: fail the client transactions to it."""
        for transaction in list(self._clients.values()):
            if transaction.peer == destination:
                transaction.transport_error(reason)
        self._collect()

    # Receiving.

    def receive_datagram(self, data: bytes, source: Address, now: float) -> None:
        """Parse and dispatch one datagram; never raises on bad input."""
        if not data.strip(b"\r\n"):
            return  # keep-alive
        try:
            message = parse_message(data)
        except SipParseError as exc:
            self._reject_malformed(data, source, str(exc), now)
            return
        self.receive_message(message, source, now)

    def receive_message(
        self, message: SipRequest | SipResponse, source: Address, now: float
    ) -> None:
        """Dispatch an already parsed message."""
        try:
            if isinstance(message, SipResponse):
                self._receive_response(message, source, now)
            else:
                self._receive_request(message, source, now)
        except SipParseError as exc:
            # A header needed for matching is malformed (typed access is lazy).
            self._outbox.events.append(MessageDropped(source, str(exc)))
        self._collect()

    def _receive_response(self, response: SipResponse, source: Address, now: float) -> None:
        via = response.top_via
        key = (via.branch or "", response.cseq.method)
        transaction = self._clients.get(key)
        if transaction is None:
            self._outbox.events.append(StrayResponse(response, source))
            return
        transaction.receive_response(response, now)

    def _receive_request(self, request: SipRequest, source: Address, now: float) -> None:
        _stamp_via(request, source)
        key = _server_key(request)
        transaction = self._servers.get(key)
        if transaction is not None:
            transaction.receive_request(request, now)
            return
        if request.method == "ACK":
            self._receive_ack_for_2xx(request, source)
            return
        peer = _response_destination(request, source)
        if not self._admitted(request, source, peer, now):
            return
        if request.method == "INVITE":
            transaction = ServerInviteTransaction(request, peer, self._outbox, self.timers)
        else:
            transaction = ServerNonInviteTransaction(request, peer, self._outbox, self.timers)
        self._servers[key] = transaction
        if request.method == "CANCEL":
            self._receive_cancel(transaction, request, now)
            return
        if request.method == "INVITE" and self.send_trying:
            transaction.send_response(make_response(request, 100), now)
        self._outbox.events.append(RequestReceived(transaction, request, source))

    def _admitted(self, request: SipRequest, source: Address, peer: Address, now: float) -> bool:
        """Screen a request that would create a server transaction (see the module doc)."""
        admission = self.admission
        if admission is None or (self.exempt is not None and self.exempt(request)):
            return True
        if request.method == "CANCEL" and _server_key(request, method="INVITE") in self._servers:
            return True
        verdict = admission.screen(request, source[0], now)
        if verdict is Screening.REFUSE:
            status, reason = admission.refusal
            refusal = make_response(request, status, reason, to_tag=stateless_tag(request))
            self._outbox.datagrams.append((bytes(refusal), peer))
            self._outbox.events.append(RequestRefused(request, source, status))
        return verdict is Screening.ACCEPT

    def _receive_cancel(
        self, transaction: ServerTransaction, cancel: SipRequest, now: float
    ) -> None:
        invite = self._servers.get(_server_key(cancel, method="INVITE"))
        if not isinstance(invite, ServerInviteTransaction):
            transaction.send_response(make_response(cancel, 481), now)
            return
        to_tag = None
        if invite.last_response is not None:
            to_tag = invite.last_response.to.tag
        transaction.send_response(make_response(cancel, 200, to_tag=to_tag), now)
        if invite.state is State.PROCEEDING:
            self._outbox.events.append(CancelReceived(invite, cancel))

    def _receive_ack_for_2xx(self, ack: SipRequest, source: Address) -> None:
        for transaction in self._servers.values():
            if (
                isinstance(transaction, ServerInviteTransaction)
                and transaction.state is State.ACCEPTED
                and transaction.request.call_id == ack.call_id
                and transaction.request.cseq.seq == ack.cseq.seq
                and transaction.request.from_.tag == ack.from_.tag
            ):
                transaction.ack_for_2xx()
        self._outbox.events.append(AckReceived(ack, source))

    def _reject_malformed(self, data: bytes, source: Address, reason: str, now: float) -> None:
        response = bad_request_response(data, reason)
        if response is not None and (
            self.admission is None
            or self.admission.screen(None, source[0], now) is Screening.ACCEPT
        ):
            self._outbox.datagrams.append((bytes(response), source))
        self._outbox.events.append(MessageDropped(source, reason))

    # Bookkeeping.

    def _all(self) -> list[Transaction]:
        return [*self._clients.values(), *self._servers.values()]

    def _collect(self) -> None:
        self._clients = {k: t for k, t in self._clients.items() if not t.terminated}
        self._servers = {k: t for k, t in self._servers.items() if not t.terminated}

    @property
    def transaction_count(self) -> int:
        """How many transactions are alive (for tests and metrics)."""
        return len(self._clients) + len(self._servers)


def _server_key(request: SipRequest, method: str | None = None) -> ServerKey:
    via = request.top_via
    method = method or ("INVITE" if request.method == "ACK" else request.method)
    branch = via.branch or ""
    host, port = via.sent_by
    if branch.startswith(BRANCH_MAGIC):
        return (branch, host, str(port), method)
    # RFC 2543 peers: match on the dialog-identifying fields instead (17.2.3).
    return (
        "2543",
        str(request.uri),
        request.to.tag or "",
        request.from_.tag or "",
        request.call_id,
        str(request.cseq.seq),
        str(via),
        method,
    )


def stateless_tag(request: SipRequest) -> str:
    """A To tag for a stateless answer: the same for every retransmission (RFC 3261 8.2.7)."""
    key = f"{request.call_id}|{request.from_.tag}|{request.top_via.branch}".encode()
    return hashlib.blake2s(key, digest_size=6).hexdigest()


def _stamp_via(request: SipRequest, source: Address) -> None:
    """Add ``received`` / ``rport`` to the top Via (RFC 3261 18.2.1, RFC 3581)."""
    values = request.headers.get_all("Via")
    via = request.top_via
    changed = False
    if "rport" in via.params and via.params["rport"] is None:
        via.params["rport"] = str(source[1])
        changed = True
    if via.host != source[0] or changed:
        via.params["received"] = source[0]
        changed = True
    if changed:
        request.headers.set_all("Via", [str(via), *values[1:]])


def _response_destination(request: SipRequest, source: Address) -> Address:
    """Where responses go (RFC 3261 18.2.2 for UDP, RFC 3581 for rport)."""
    via = request.top_via
    rport = via.params.get("rport")
    if rport:
        return source[0], int(rport)
    host = via.params.get("received") or source[0]
    return host, via.port if via.port is not None else 5060


def bad_request_response(data: bytes, reason: str) -> SipResponse | None:
    """A 400 for a malformed request, when it has what a response must copy.

    Returns ``None`` for responses, ACKs, and requests too broken to answer.
    """
    head = data.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
    lines = head.split("\r\n")
    first = lines[0].split(" ")
    if len(first) != 3 or first[2] != "SIP/2.0" or first[0] in ("ACK", "SIP/2.0"):
        return None
    found: dict[str, list[str]] = {}
    aliases = {"v": "via", "f": "from", "t": "to", "i": "call-id"}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        key = aliases.get(name.strip().lower(), name.strip().lower())
        if colon and key in ("via", "from", "to", "call-id", "cseq") and value.isprintable():
            found.setdefault(key, []).append(value.strip())
    if not all(k in found for k in ("via", "from", "to", "call-id", "cseq")):
        return None
    headers = Headers()
    for value in found["via"]:
        headers.add("Via", value)
    for name in ("From", "To", "Call-ID", "CSeq"):
        headers.add(name, found[name.lower()][0])
    phrase = "Bad Request (" + reason.replace("\r", " ").replace("\n", " ")[:80] + ")"
    return SipResponse(400, phrase, headers)
