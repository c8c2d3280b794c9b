"""A SIP user agent (UAC and UAS) on asyncio: calls, re-INVITEs, BYE, CANCEL, OPTIONS.

This is the thin async layer over the sans-I/O core: :class:`UserAgent` turns the
transaction layer's events into awaitable calls (:meth:`UserAgent.call`) and a queue of
:class:`IncomingCall` objects; a :class:`Call` offers ``reinvite()``, ``bye()`` and a queue
of :class:`IncomingReInvite` / :class:`CallEnded` events. Media are not handled here: SDP
goes in and out as :class:`SessionDescription`, and the caller opens RTP/UDPTL sockets.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket

from .call import (
    ALLOW,
    Call,
    CallEnded,
    CallFailed,
    IncomingCall,
    IncomingReInvite,
    peer_of,
)
from .dialog import Dialog, new_branch, new_call_id, new_tag
from .digest import Credentials, authorize
from .errors import DialogError, DigestError, SdpParseError
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
    make_cancel,
)
from .transaction_layer import TransactionLayer
from .transport import SipTransport
from .uri import Address as NameAddress
from .uri import SipUri

__all__ = [
    "Call",
    "CallEnded",
    "CallFailed",
    "IncomingCall",
    "IncomingReInvite",
    "UserAgent",
]


class UserAgent:
    """One SIP endpoint on one UDP socket."""

    def __init__(self, user: str = "faxline", timers: Timers | None = None) -> None:
        self.user = user
        self.layer = TransactionLayer(timers)
        self.incoming: asyncio.Queue[IncomingCall] = asyncio.Queue()
        self._transport: SipTransport | None = None
        self._waiters: dict[ClientTransaction, asyncio.Queue[SipResponse | CallFailed]] = {}
        self._calls: dict[tuple[str, str, str], Call] = {}
        self._pending: dict[ServerInviteTransaction, IncomingCall] = {}
        self._registration: tuple[str, str, int] | None = None  # Call-ID, tag, last CSeq
        # INVITEs we gave up on, by (Call-ID, CSeq): a 2xx that still comes is ACKed and
        # the call hung up at once, instead of leaving the far end in a call nobody holds.
        self._abandoned: dict[tuple[str, int], tuple[SipRequest, Address]] = {}

    @classmethod
    async def listen(cls, host: str, port: int = 5060, **kwargs: object) -> UserAgent:
        """Create a user agent bound to ``host:port`` (an IP address; port 0 for any)."""
        ua = cls(**kwargs)  # type: ignore[arg-type]
        ua._transport = await SipTransport.listen(host, port, ua.layer, ua._on_event)
        return ua

    @property
    def address(self) -> Address:
        """The bound ``(host, port)``."""
        return self._shell.local_address

    @property
    def contact(self) -> NameAddress:
        """Our Contact address."""
        host, port = self.address
        return NameAddress(SipUri(host=_uri_host(host), user=self.user, port=port))

    @property
    def _shell(self) -> SipTransport:
        if self._transport is None:
            raise RuntimeError("the user agent is not listening")
        return self._transport

    def close(self) -> None:
        """Close the socket (calls are not ended: send BYE first)."""
        self._shell.close()

    # Outgoing calls.

    async def call(
        self,
        uri: SipUri | str,
        offer: SessionDescription,
        *,
        destination: Address | None = None,
        from_uri: SipUri | None = None,
        credentials: Credentials | None = None,
        timeout: float = 60.0,
    ) -> Call:
        """Place a call and wait for its answer; raise :class:`CallFailed` otherwise.

        ``destination`` overrides where the INVITE goes (an outbound proxy or trunk);
        by default it is the Request-URI's host. 401/407 challenges are answered once
        with ``credentials``. After ``timeout`` seconds without a final answer a ringing
        call is cancelled.
        """
        target = SipUri.parse(uri) if isinstance(uri, str) else uri
        host, _ = self.address
        local = NameAddress(from_uri or SipUri(host=_uri_host(host), user=self.user))
        headers = Headers()
        headers.add("Via", str(self._via()))
        headers.add("Max-Forwards", "70")
        headers.add("From", str(local.with_tag(new_tag())))
        headers.add("To", str(NameAddress(target)))
        headers.add("Call-ID", new_call_id(host))
        headers.add("CSeq", "1 INVITE")
        headers.add("Contact", str(self.contact))
        headers.add("Allow", ALLOW)
        headers.add("Content-Type", "application/sdp")
        invite = SipRequest("INVITE", target, headers, bytes(offer))
        peer = destination or await _resolve(target)
        for attempt in range(2):
            response = await self._invite_once(invite, peer, timeout)
            if response.status in (401, 407) and credentials is not None and attempt == 0:
                invite = _next_attempt(invite)
                try:
                    authorize(invite, response, credentials, cnonce=new_tag())
                except DigestError as exc:
                    raise CallFailed(response.status, f"cannot authenticate: {exc}") from exc
                continue
            if response.status >= 300:
                raise CallFailed(response.status, response.reason)
            try:
                return self._confirm(invite, response, destination, peer, offer)
            except DialogError as exc:
                # Without tags or Contact we cannot even ACK; the peer gives up by itself.
                raise CallFailed(502, f"unusable 2xx: {exc}") from exc
        raise AssertionError("unreachable")

    async def options(
        self, uri: SipUri | str, *, destination: Address | None = None
    ) -> SipResponse:
        """Send OPTIONS (a trunk or proxy health check) and return the final response.

        Raises :class:`CallFailed` (408) when nothing answers within Timer F.
        """
        target = SipUri.parse(uri) if isinstance(uri, str) else uri
        host, _ = self.address
        headers = Headers()
        headers.add("Via", str(self._via()))
        headers.add("Max-Forwards", "70")
        headers.add(
            "From",
            str(NameAddress(SipUri(host=_uri_host(host), user=self.user)).with_tag(new_tag())),
        )
        headers.add("To", str(NameAddress(target)))
        headers.add("Call-ID", new_call_id(host))
        headers.add("CSeq", "1 OPTIONS")
        headers.add("Accept", "application/sdp")
        request = SipRequest("OPTIONS", target, headers)
        return await self._request(request, destination or await _resolve(target))

    async def register(
        self,
        registrar: SipUri | str,
        *,
        aor: SipUri | None = None,
        credentials: Credentials | None = None,
        expires: int = 3600,
        destination: Address | None = None,
    ) -> int:
        """Register our Contact for ``aor`` (default: our user at the registrar's domain).

        Answers one 401/407 with ``credentials``; returns the expiry the registrar granted
        (0 after an un-REGISTER with ``expires=0``). Refreshing before it runs out is the
        caller's job. Raises :class:`CallFailed` when the registrar refuses.
        """
        target = SipUri.parse(registrar) if isinstance(registrar, str) else registrar
        record = aor or SipUri(host=target.host, user=self.user, port=target.port)
        host, _ = self.address
        if self._registration is None:
            self._registration = (new_call_id(host), new_tag(), 0)
        call_id, tag, cseq = self._registration
        peer = destination or await _resolve(target)
        authorization: list[tuple[str, str]] = []
        for attempt in range(2):
            cseq += 1
            self._registration = (call_id, tag, cseq)
            headers = Headers()
            headers.add("Via", str(self._via()))
            headers.add("Max-Forwards", "70")
            headers.add("From", str(NameAddress(record).with_tag(tag)))
            headers.add("To", str(NameAddress(record)))
            headers.add("Call-ID", call_id)
            headers.add("CSeq", f"{cseq} REGISTER")
            headers.add("Contact", str(self.contact))
            headers.add("Expires", str(expires))
            for name, value in authorization:
                headers.add(name, value)
            request = SipRequest("REGISTER", target, headers)
            response = await self._request(request, peer)
            if response.status in (401, 407) and credentials is not None and attempt == 0:
                try:
                    authorize(request, response, credentials, cnonce=new_tag())
                except DigestError as exc:
                    raise CallFailed(response.status, f"cannot authenticate: {exc}") from exc
                authorization = [
                    (n, v)
                    for n, v in request.headers
                    if n in ("Authorization", "Proxy-Authorization")
                ]
                continue
            if response.status >= 300:
                raise CallFailed(response.status, response.reason)
            return _granted_expiry(response, self.contact.uri, expires)
        raise AssertionError("unreachable")

    async def _invite_once(self, invite: SipRequest, peer: Address, timeout: float) -> SipResponse:
        transaction, queue = self._start(invite, peer)
        provisional = False
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        cancelled = False
        answered = False
        try:
            while True:
                remaining = deadline - loop.time()
                try:
                    item = await asyncio.wait_for(queue.get(), max(remaining, 0.0))
                except TimeoutError:
                    if not provisional or cancelled:
                        raise CallFailed(408, "no answer") from None
                    self._start(make_cancel(invite), peer)
                    cancelled = True
                    deadline = loop.time() + 64 * self.layer.timers.t1
                    continue
                if isinstance(item, CallFailed):
                    raise item
                if item.status < 200:
                    provisional = True
                    continue
                answered = True
                return item
        except asyncio.CancelledError:
            # Our caller gave up (a draining dispatcher): stop the far end ringing too.
            # Before any provisional answer RFC 3261 9.1 allows no CANCEL.
            if provisional and not cancelled:
                self._start(make_cancel(invite), peer)
            raise
        finally:
            self._waiters.pop(transaction, None)
            if not answered:
                self._abandon(invite, peer)

    def _abandon(self, invite: SipRequest, peer: Address) -> None:
        if len(self._abandoned) >= 256:
            self._abandoned.pop(next(iter(self._abandoned)))
        self._abandoned[(invite.call_id, invite.cseq.seq)] = (invite, peer)

    def _hang_up_late(self, invite: SipRequest, peer: Address, response: SipResponse) -> None:
        """ACK a 2xx that came after we gave up on its INVITE, then BYE at once."""
        try:
            dialog = Dialog.as_uac(invite, response)
        except DialogError:
            return  # no tags or Contact: nothing can be sent in that dialog
        hop = peer_of(dialog, peer)
        self.layer.send_stateless(dialog.create_ack(invite, self._via()), hop)
        self.layer.send_request(dialog.create_request("BYE", self._via()), hop, self._shell.now())
        self._shell.flush()

    def _confirm(
        self,
        invite: SipRequest,
        response: SipResponse,
        outbound_proxy: Address | None,
        peer: Address,
        offer: SessionDescription,
    ) -> Call:
        dialog = Dialog.as_uac(invite, response)
        # In-dialog requests follow the route set / remote target unless we were told to
        # use an outbound proxy (a trunk), which then stays the next hop.
        peer = outbound_proxy or peer_of(dialog, peer)
        ack = dialog.create_ack(invite, self._via())
        self.layer.send_stateless(ack, peer)
        self._shell.flush()
        call = Call(self, dialog, peer, offer, None)
        call.last_ack = ack
        self._calls[dialog.id] = call
        try:
            call.remote_sdp = SessionDescription.parse(response.body)
        except SdpParseError as exc:
            call.bye_soon()
            raise CallFailed(488, f"bad SDP in the answer: {exc}") from exc
        return call

    # Plumbing used by calls.

    def _via(self) -> Via:
        host, port = self.address
        return Via(_uri_host(host), port, params={"rport": None, "branch": new_branch()})

    def _start(
        self, request: SipRequest, peer: Address
    ) -> tuple[ClientTransaction, asyncio.Queue[SipResponse | CallFailed]]:
        transaction = self.layer.send_request(request, peer, self._shell.now())
        queue: asyncio.Queue[SipResponse | CallFailed] = asyncio.Queue()
        self._waiters[transaction] = queue
        self._shell.flush()
        return transaction, queue

    async def _request(self, request: SipRequest, peer: Address) -> SipResponse:
        transaction, queue = self._start(request, peer)
        try:
            while True:
                item = await queue.get()
                if isinstance(item, CallFailed):
                    raise item
                if item.status >= 200:
                    return item
        finally:
            self._waiters.pop(transaction, None)

    def _respond(self, transaction: ServerTransaction, response: SipResponse) -> None:
        self.layer.send_response(transaction, response, self._shell.now())
        self._shell.flush()

    # Events from the transaction layer.

    def _on_event(self, event: Event) -> None:
        if isinstance(event, ResponseReceived):
            queue = self._waiters.get(event.transaction)
            if queue is not None:
                queue.put_nowait(event.response)
            else:
                self._reack(event.response)
        elif isinstance(event, (TransactionTimeout, TransportError)):
            transaction = event.transaction
            queue = (
                self._waiters.get(transaction)
                if isinstance(transaction, ClientTransaction)
                else None
            )
            if queue is not None:
                reason = "timeout" if isinstance(event, TransactionTimeout) else event.reason
                queue.put_nowait(CallFailed(408, reason))
        elif isinstance(event, RequestReceived):
            self._on_request(event.transaction, event.request, event.source)
        elif isinstance(event, CancelReceived):
            incoming = self._pending.pop(event.transaction, None)
            if incoming is not None:
                incoming.cancelled.set()
                incoming.reject(487)
        elif isinstance(event, AckReceived):
            call = self._find(event.request)
            if call is not None:
                call.acked(event.request)
        elif isinstance(event, AckTimeout):
            for call in list(self._calls.values()):
                if call.invite_transaction is event.transaction:
                    call.bye_soon(reason="no ack")
        elif isinstance(event, StrayResponse):
            self._reack(event.response)

    def _reack(self, response: SipResponse) -> None:
        """A 2xx to an INVITE we already ACKed came again: our ACK was lost, resend it."""
        if not (200 <= response.status < 300 and response.cseq.method == "INVITE"):
            return
        call = self._find(response)
        if call is None:
            late = self._abandoned.pop((response.call_id, response.cseq.seq), None)
            if late is not None:
                self._hang_up_late(*late, response)
            return
        ack = call.last_ack
        if ack is not None and ack.cseq.seq == response.cseq.seq:
            self.layer.send_stateless(ack, call.peer)

    def _find(self, message: SipRequest | SipResponse) -> Call | None:
        for call in self._calls.values():
            if call.dialog.matches(message):
                return call
        return None

    def _on_request(
        self, transaction: ServerTransaction, request: SipRequest, source: Address
    ) -> None:
        method = request.method
        if method == "OPTIONS":
            self._respond(
                transaction,
                make_response(
                    request,
                    200,
                    to_tag=new_tag(),
                    extra_headers=[("Allow", ALLOW), ("Accept", "application/sdp")],
                ),
            )
            return
        in_dialog = request.to.tag is not None
        if in_dialog:
            call = self._find(request)
            if call is None:
                self._respond(transaction, make_response(request, 481))
                return
            try:
                call.dialog.receive_request(request)
            except DialogError:
                self._respond(transaction, make_response(request, 500, "CSeq Out of Order"))
                return
            call.on_request(transaction, request)
            return
        if method != "INVITE":
            self._respond(
                transaction,
                make_response(request, 405, to_tag=new_tag(), extra_headers=[("Allow", ALLOW)]),
            )
            return
        assert isinstance(transaction, ServerInviteTransaction)
        offer: SessionDescription | None = None
        if request.body:
            if request.content_type != "application/sdp":
                self._respond(transaction, make_response(request, 415, to_tag=new_tag()))
                return
            try:
                offer = SessionDescription.parse(request.body)
            except SdpParseError as exc:
                reason = f"Bad Request (SDP: {str(exc)[:60]})"
                self._respond(transaction, make_response(request, 400, reason, to_tag=new_tag()))
                return
        if not request.contacts or request.from_.tag is None:
            reason = "Bad Request (a dialog needs a Contact and a From tag)"
            self._respond(transaction, make_response(request, 400, reason, to_tag=new_tag()))
            return
        incoming = IncomingCall(self, transaction, request, offer, source)
        self._pending[transaction] = incoming
        self.incoming.put_nowait(incoming)


def _next_attempt(invite: SipRequest) -> SipRequest:
    """The same INVITE with a new branch and the next CSeq (RFC 3261 22.2)."""
    headers = invite.headers.copy()
    via = invite.top_via
    via.params["branch"] = new_branch()
    headers.set_all("Via", [str(via)])
    headers.set("CSeq", f"{invite.cseq.seq + 1} INVITE")
    return SipRequest("INVITE", invite.uri, headers, invite.body)


async def _resolve(uri: SipUri) -> Address:
    host, port = uri.host_port()
    try:
        ipaddress.ip_address(host)
        return host, port
    except ValueError:
        pass
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    address = infos[0][4]
    return str(address[0]), int(address[1])


def _granted_expiry(response: SipResponse, contact: SipUri, requested: int) -> int:
    """The expiry a REGISTER's 2xx grants our Contact (RFC 3261 10.2.4)."""
    for address in response.contacts:
        if address.uri.host_port() == contact.host_port() and address.uri.user == contact.user:
            value = address.params.get("expires")
            if value is not None and value.isdigit():
                return int(value)
    header = response.headers.get("Expires")
    if header is not None and header.strip().isdigit():
        return int(header.strip())
    return requested


def _uri_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
