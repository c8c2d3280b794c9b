"""The user agent core (RFC 3261 8, 12-15) over one transaction layer, sans-I/O.

In the manner of the transaction layer: feed it ``receive_datagram(data, source, now)`` and
``handle_timer(now)``, give it commands (:meth:`UserAgentCore.invite`, ``accept``,
``reinvite``, ``bye``, ...), and take ``datagrams_to_send()``, ``next_event()`` and
``get_timer()``. Events are in :mod:`faxline.sip.events`; each names the handle
(:mod:`faxline.sip.call`) it is about.

What the core does by itself, without asking anyone (the answers to our own requests are
:mod:`faxline.sip.uac`'s business):

- answers OPTIONS (200), requests outside any dialog other than INVITE (405), in-dialog
  requests of unknown dialogs (481), out-of-order CSeqs (500), INVITEs with a body that is
  not SDP (415) or broken SDP, or without a Contact or From tag (400), a re-INVITE while
  ours is pending (491, glare) or while the previous one is unanswered (500);
- answers a CANCEL of a ringing call (200, then 487 to the INVITE) and reports it;
- sends BYE when our 2xx is never ACKed (RFC 3261 13.3.1.4), and answers 487 to a
  re-INVITE still pending when its call ends.

Randomness (tags, branches, Call-IDs, digest cnonces) comes from the ``random.Random`` it
is given: ``random.SystemRandom()`` in a server, where they must be unguessable; a seeded
one in tests. New requests pass the :class:`~faxline.sip.admission.Admission` screen
before any server transaction exists (requests of the dialogs we hold never do).
"""

from __future__ import annotations

import contextlib
import random
from collections import deque

from .admission import Admission
from .call import (
    ALLOW,
    Call,
    CallFailed,
    Calls,
    IncomingInvite,
    IncomingReInvite,
    OutgoingInvite,
    OutgoingRequest,
    peer_of,
)
from .dialog import Dialog, new_branch, new_call_id, new_tag
from .digest import Credentials
from .errors import DialogError, SdpParseError
from .events import (
    CallCancelled,
    CallConfirmed,
    CallEnded,
    NewCall,
    ReInviteReceived,
    UaEvent,
)
from .headers import Headers, Via
from .message import SipRequest, SipResponse, make_response
from .sdp import SessionDescription
from .transaction import (
    AckReceived,
    AckTimeout,
    Address,
    CancelReceived,
    ClientTransaction,
    Event,
    RequestReceived,
    ResponseReceived,
    ServerInviteTransaction,
    ServerTransaction,
    StrayResponse,
    Timers,
    TransactionTimeout,
    TransportError,
)
from .transaction_layer import TransactionLayer
from .uac import ClientSide
from .uri import Address as NameAddress
from .uri import SipUri


class UserAgentCore:
    """One SIP endpoint at ``address`` (the shell's bound socket)."""

    def __init__(
        self,
        address: Address,
        *,
        rng: random.Random,
        user: str = "faxline",
        timers: Timers | None = None,
        admission: Admission | None = None,
    ) -> None:
        self.address = address
        self.user = user
        self.rng = rng
        self.layer = TransactionLayer(timers, admission=admission, exempt=self._in_our_dialog)
        self.calls = Calls()
        self._events: deque[UaEvent] = deque()
        self._client = ClientSide(self)
        self._pending: dict[ServerInviteTransaction, IncomingInvite] = {}
        self._awaiting_ack: dict[ServerInviteTransaction, Call] = {}
        self._incoming_reinvites: dict[Call, IncomingReInvite] = {}
        # Registration dialogs by (registrar, AOR): Call-ID, tag, last CSeq, and the
        # answer to the registrar's challenge (reused on refreshes, as registrars expect).
        self._registrations: dict[tuple[str, str], tuple[str, str, int, list[str]]] = {}

    @property
    def timers(self) -> Timers:
        """The RFC 3261 timer values in use."""
        return self.layer.timers

    @property
    def contact(self) -> NameAddress:
        """Our Contact address."""
        host, port = self.address
        return NameAddress(SipUri(host=_uri_host(host), user=self.user, port=port))

    @property
    def has_output(self) -> bool:
        """Whether datagrams or events wait to be taken (the shell then flushes)."""
        return bool(self._events) or self.layer.has_output

    # -- sans-I/O interface -------------------------------------------------------------

    def receive_datagram(self, data: bytes, source: Address, now: float) -> None:
        """Take one datagram from the socket."""
        self.layer.receive_datagram(data, source, now)
        self._process(now)

    def handle_timer(self, now: float) -> None:
        """Fire what is due: transaction timers and answer timeouts."""
        self.layer.handle_timer(now)
        self._process(now)
        self._client.handle_timer(now)
        self._process(now)

    def get_timer(self) -> float | None:
        """The earliest deadline (arm one timer for it)."""
        deadlines = [d for d in (self.layer.get_timer(), self._client.get_timer()) if d is not None]
        return min(deadlines, default=None)

    def datagrams_to_send(self) -> list[tuple[bytes, Address]]:
        """Take the datagrams queued since the last call."""
        return self.layer.datagrams_to_send()

    def next_event(self) -> UaEvent | None:
        """Take the next event, if any."""
        events = self._events
        return events.popleft() if events else None

    def transport_error(self, destination: Address, reason: str, now: float) -> None:
        """The shell could not send to ``destination``."""
        self.layer.transport_error(destination, reason)
        self._process(now)

    # -- outgoing calls -----------------------------------------------------------------

    def invite(
        self,
        target: SipUri,
        offer: SessionDescription,
        peer: Address,
        now: float,
        *,
        from_uri: SipUri | None = None,
        credentials: Credentials | None = None,
        answer_timeout: float = 60.0,
        outbound_proxy: bool = False,
    ) -> OutgoingInvite:
        """Send an INVITE with ``offer`` to ``peer`` (the resolved next hop).

        With ``outbound_proxy`` the call's in-dialog requests keep going to ``peer`` (a
        trunk's proxy) instead of its route set or remote target. A call that rings for
        ``answer_timeout`` seconds is cancelled; one nothing answers fails with 408.
        """
        host, _ = self.address
        local = NameAddress(from_uri or SipUri(host=_uri_host(host), user=self.user))
        headers = Headers()
        headers.add("Via", str(self.via()))
        headers.add("Max-Forwards", "70")
        headers.add("From", str(local.with_tag(new_tag(self.rng))))
        headers.add("To", str(NameAddress(target)))
        headers.add("Call-ID", new_call_id(host, self.rng))
        headers.add("CSeq", "1 INVITE")
        headers.add("Contact", str(self.contact))
        headers.add("Allow", ALLOW)
        headers.add("Content-Type", "application/sdp")
        invite = SipRequest("INVITE", target, headers, bytes(offer))
        return self._client.send_invite(
            invite,
            peer,
            offer,
            now,
            outbound_proxy=peer if outbound_proxy else None,
            credentials=credentials,
            timeout=answer_timeout,
        )

    def cancel(self, invite: OutgoingInvite, now: float) -> None:
        """Give up on ``invite``: CANCEL it once it rings; a later 2xx is hung up."""
        self._client.cancel(invite, now)
        self._process(now)

    # -- incoming calls -----------------------------------------------------------------

    def ring(
        self,
        incoming: IncomingInvite,
        now: float,
        status: int = 180,
        sdp: SessionDescription | None = None,
    ) -> None:
        """Send 180 Ringing, or 183 Session Progress with ``sdp`` for early media."""
        if incoming.answered or incoming.cancelled:
            return
        response = make_response(
            incoming.request,
            status,
            to_tag=incoming.local_tag,
            contact=self.contact,
            body=bytes(sdp) if sdp is not None else b"",
        )
        self._respond(incoming.transaction, response, now)

    def reject(
        self,
        incoming: IncomingInvite,
        status: int,
        now: float,
        reason: str | None = None,
        extra_headers: list[tuple[str, str]] | None = None,
    ) -> None:
        """Refuse the call (486 busy, 488 no acceptable media...); no-op once answered."""
        if incoming.answered or incoming.cancelled:
            return
        incoming.answered = True
        self._pending.pop(incoming.transaction, None)
        response = make_response(
            incoming.request, status, reason, to_tag=incoming.local_tag, extra_headers=extra_headers
        )
        self._respond(incoming.transaction, response, now)

    def accept(self, incoming: IncomingInvite, answer: SessionDescription, now: float) -> Call:
        """Answer 200 with ``answer`` (our offer, if the INVITE had none); return the call.

        Raises :class:`CallFailed` (487) if the caller cancelled meanwhile.
        """
        if incoming.cancelled:
            raise CallFailed(487, "the caller cancelled")
        if incoming.answered:
            raise ValueError("the INVITE has been answered already")
        incoming.answered = True
        self._pending.pop(incoming.transaction, None)
        dialog = Dialog.as_uas(incoming.request, incoming.local_tag, self.contact)
        response = make_response(
            incoming.request,
            200,
            to_tag=incoming.local_tag,
            contact=self.contact,
            body=bytes(answer),
            extra_headers=[("Allow", ALLOW)],
        )
        call = Call(dialog, peer_of(dialog, incoming.source), answer, incoming.offer)
        call.invite_transaction = incoming.transaction
        self.calls.add(call)
        self._awaiting_ack[incoming.transaction] = call
        self._respond(incoming.transaction, response, now)
        return call

    # -- established calls --------------------------------------------------------------

    def reinvite(
        self, call: Call, offer: SessionDescription, now: float, timeout: float = 32.0
    ) -> OutgoingInvite:
        """Send a re-INVITE with ``offer``; the answer comes as ``ReInviteAnswered``/``Failed``.

        Raises :class:`CallFailed` when the call has ended (481) or an INVITE is pending in
        either direction (491: try again later).
        """
        if call.ended:
            raise CallFailed(481, "the call has ended")
        if call.reinvite is not None or call in self._incoming_reinvites:
            raise CallFailed(491, "a re-INVITE is already pending")
        invite = call.dialog.create_request(
            "INVITE", self.via(), body=bytes(offer), extra_headers=[("Allow", ALLOW)]
        )
        outgoing = self._client.send_invite(
            invite, call.peer, offer, now, call=call, timeout=timeout
        )
        call.reinvite = outgoing
        return outgoing

    def accept_reinvite(
        self, reinvite: IncomingReInvite, answer: SessionDescription, now: float
    ) -> None:
        """Answer the peer's re-INVITE 200 with ``answer``; the call's SDPs are updated."""
        if reinvite.answered:
            return
        reinvite.answered = True
        call = reinvite.call
        self._incoming_reinvites.pop(call, None)
        response = make_response(
            reinvite.request,
            200,
            contact=self.contact,
            body=bytes(answer),
            extra_headers=[("Allow", ALLOW)],
        )
        call.local_sdp = answer
        if reinvite.offer is not None:
            call.remote_sdp = reinvite.offer
        call.invite_transaction = reinvite.transaction
        self._awaiting_ack[reinvite.transaction] = call
        self._respond(reinvite.transaction, response, now)

    def reject_reinvite(
        self, reinvite: IncomingReInvite, now: float, status: int = 488, reason: str | None = None
    ) -> None:
        """Refuse the peer's new session; the old one stays."""
        if reinvite.answered:
            return
        reinvite.answered = True
        self._incoming_reinvites.pop(reinvite.call, None)
        self._respond(reinvite.transaction, make_response(reinvite.request, status, reason), now)

    def bye(self, call: Call, now: float, reason: str = "local") -> OutgoingRequest | None:
        """End ``call`` (``CallEnded`` at once) and send BYE; None if it had ended."""
        if call.ended:
            return None
        self._end(call, reason, now)
        bye = call.dialog.create_request("BYE", self.via())
        request = self._client.send(bye, call.peer, now, call=call)
        self._process(now)
        return request

    # -- other requests -----------------------------------------------------------------

    def options(self, target: SipUri, peer: Address, now: float) -> OutgoingRequest:
        """Send OPTIONS (a health check); the answer comes as ``RequestAnswered``."""
        host, _ = self.address
        headers = Headers()
        headers.add("Via", str(self.via()))
        headers.add("Max-Forwards", "70")
        local = NameAddress(SipUri(host=_uri_host(host), user=self.user))
        headers.add("From", str(local.with_tag(new_tag(self.rng))))
        headers.add("To", str(NameAddress(target)))
        headers.add("Call-ID", new_call_id(host, self.rng))
        headers.add("CSeq", "1 OPTIONS")
        headers.add("Accept", "application/sdp")
        return self._client.send(SipRequest("OPTIONS", target, headers), peer, now)

    def register(
        self,
        registrar: SipUri,
        peer: Address,
        now: float,
        *,
        aor: SipUri | None = None,
        credentials: Credentials | None = None,
        expires: int = 3600,
    ) -> OutgoingRequest:
        """REGISTER our Contact for ``aor`` (default: our user at the registrar's domain).

        Refreshes reuse the registration's Call-ID and tag with the next CSeq, and the
        last answer to the registrar's challenge.
        """
        record = aor or SipUri(host=registrar.host, user=self.user, port=registrar.port)
        key = (str(registrar), str(record))
        host, _ = self.address
        call_id, tag, cseq, authorization = self._registrations.get(
            key, (new_call_id(host, self.rng), new_tag(self.rng), 0, [])
        )
        cseq += 1
        self._registrations[key] = (call_id, tag, cseq, authorization)
        headers = Headers()
        headers.add("Via", str(self.via()))
        headers.add("Max-Forwards", "70")
        headers.add("From", str(NameAddress(record).with_tag(tag)))
        headers.add("To", str(NameAddress(record)))
        headers.add("Call-ID", call_id)
        headers.add("CSeq", f"{cseq} REGISTER")
        headers.add("Contact", str(self.contact))
        headers.add("Expires", str(expires))
        for line in authorization:
            name, _, value = line.partition(":")
            headers.add(name, value)
        request = SipRequest("REGISTER", registrar, headers)
        return self._client.send(request, peer, now, credentials=credentials)

    def remember_authorization(self, register: SipRequest) -> None:
        """A REGISTER answered a challenge: its CSeq and credentials serve the refreshes."""
        lines = [
            f"{name}:{value}"
            for name, value in register.headers
            if name in ("Authorization", "Proxy-Authorization")
        ]
        for key, (call_id, tag, _, _) in self._registrations.items():
            if call_id == register.call_id:
                self._registrations[key] = (call_id, tag, register.cseq.seq, lines)

    # -- plumbing -----------------------------------------------------------------------

    def via(self) -> Via:
        """Our Via for a new request, with a fresh branch."""
        host, port = self.address
        return Via(_uri_host(host), port, params={"rport": None, "branch": new_branch(self.rng)})

    def emit(self, event: UaEvent) -> None:
        """Queue an event for :meth:`next_event`."""
        self._events.append(event)

    def _respond(self, transaction: ServerTransaction, response: SipResponse, now: float) -> None:
        self.layer.send_response(transaction, response, now)
        self._process(now)

    def _process(self, now: float) -> None:
        while (event := self.layer.next_event()) is not None:
            self._handle(event, now)

    def _handle(self, event: Event, now: float) -> None:
        if isinstance(event, ResponseReceived):
            self._client.receive_response(event.transaction, event.response, now)
        elif isinstance(event, StrayResponse):
            self._client.stray(event.response, now)
        elif isinstance(event, (TransactionTimeout, TransportError)):
            if isinstance(event.transaction, ClientTransaction):
                reason = "timeout" if isinstance(event, TransactionTimeout) else event.reason
                self._client.transaction_failed(event.transaction, reason)
        elif isinstance(event, RequestReceived):
            self._request(event.transaction, event.request, event.source, now)
        elif isinstance(event, CancelReceived):
            incoming = self._pending.pop(event.transaction, None)
            if incoming is not None:
                incoming.cancelled = True
                response = make_response(incoming.request, 487, to_tag=incoming.local_tag)
                self._respond(incoming.transaction, response, now)
                self.emit(CallCancelled(incoming))
        elif isinstance(event, AckReceived):
            call = self.calls.for_request(event.request)
            if call is not None:
                self._acked(call, event.request)
        elif isinstance(event, AckTimeout):
            call = self._awaiting_ack.pop(event.transaction, None)
            if call is not None:
                self.bye(call, now, reason="no ack")
        else:  # RequestRefused, MessageDropped: for the shell to log
            self.emit(event)

    # -- requests from the network --------------------------------------------------------

    def _request(
        self, transaction: ServerTransaction, request: SipRequest, source: Address, now: float
    ) -> None:
        method = request.method
        if method == "OPTIONS":
            response = make_response(
                request,
                200,
                to_tag=new_tag(self.rng),
                extra_headers=[("Allow", ALLOW), ("Accept", "application/sdp")],
            )
            self._respond(transaction, response, now)
            return
        if request.to.tag is not None:
            self._in_dialog(transaction, request, now)
            return
        tag = new_tag(self.rng)
        if method != "INVITE":
            response = make_response(request, 405, to_tag=tag, extra_headers=[("Allow", ALLOW)])
            self._respond(transaction, response, now)
            return
        assert isinstance(transaction, ServerInviteTransaction)
        offer: SessionDescription | None = None
        if request.body:
            if request.content_type != "application/sdp":
                self._respond(transaction, make_response(request, 415, to_tag=tag), now)
                return
            try:
                offer = SessionDescription.parse(request.body)
            except SdpParseError as exc:
                reason = f"Bad Request (SDP: {str(exc)[:60]})"
                self._respond(transaction, make_response(request, 400, reason, to_tag=tag), now)
                return
        if not request.contacts or request.from_.tag is None:
            reason = "Bad Request (a dialog needs a Contact and a From tag)"
            self._respond(transaction, make_response(request, 400, reason, to_tag=tag), now)
            return
        incoming = IncomingInvite(transaction, request, offer, source, tag)
        self._pending[transaction] = incoming
        self.emit(NewCall(incoming))

    def _in_dialog(self, transaction: ServerTransaction, request: SipRequest, now: float) -> None:
        call = self.calls.for_request(request)
        if call is None:
            self._respond(transaction, make_response(request, 481), now)
            return
        try:
            call.dialog.receive_request(request)
        except DialogError:
            self._respond(transaction, make_response(request, 500, "CSeq Out of Order"), now)
            return
        if request.method == "BYE":
            self._respond(transaction, make_response(request, 200), now)
            self.calls.remove(call)
            self._end(call, "bye", now)
        elif request.method == "INVITE":
            assert isinstance(transaction, ServerInviteTransaction)
            self._reinvite(call, transaction, request, now)
        else:
            response = make_response(request, 405, extra_headers=[("Allow", ALLOW)])
            self._respond(transaction, response, now)

    def _reinvite(
        self, call: Call, transaction: ServerInviteTransaction, request: SipRequest, now: float
    ) -> None:
        if call.reinvite is not None:
            self._respond(transaction, make_response(request, 491), now)  # glare
            return
        if call in self._incoming_reinvites or call.ended:
            response = make_response(request, 500, extra_headers=[("Retry-After", "1")])
            self._respond(transaction, response, now)
            return
        offer = None
        if request.body:
            try:
                offer = SessionDescription.parse(request.body)
            except SdpParseError as exc:
                reason = f"Bad Request (SDP: {str(exc)[:60]})"
                self._respond(transaction, make_response(request, 400, reason), now)
                return
        reinvite = IncomingReInvite(call, transaction, request, offer)
        self._incoming_reinvites[call] = reinvite
        self.emit(ReInviteReceived(reinvite))

    def _acked(self, call: Call, ack: SipRequest) -> None:
        """The ACK for our 2xx arrived (it may carry the answer to our late offer)."""
        if call.invite_transaction is not None:
            self._awaiting_ack.pop(call.invite_transaction, None)
        if ack.body and call.remote_sdp is None:
            # A broken answer leaves the call without one; the application decides.
            with contextlib.suppress(SdpParseError):
                call.remote_sdp = SessionDescription.parse(ack.body)
        if not call.confirmed:
            call.confirmed = True
            self.emit(CallConfirmed(call))

    def _end(self, call: Call, reason: str, now: float) -> None:
        if call.ended:
            return  # BYEs crossed
        call.ended = True
        call.end_reason = reason
        if call.invite_transaction is not None:
            self._awaiting_ack.pop(call.invite_transaction, None)
        pending = self._incoming_reinvites.pop(call, None)
        if pending is not None and not pending.answered:
            pending.answered = True
            self._respond(pending.transaction, make_response(pending.request, 487), now)
        self.emit(CallEnded(call, reason))

    def _in_our_dialog(self, request: SipRequest) -> bool:
        """Whether ``request`` belongs to a dialog we hold (it is then never screened)."""
        return request.to.tag is not None and self.calls.for_request(request) is not None


def _uri_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
