"""A SIP user agent (UAC and UAS) on asyncio: calls, re-INVITEs, BYE, CANCEL, OPTIONS.

This is the thin async layer over the sans-I/O core: :class:`UserAgent` turns the
transaction layer's events into awaitable calls (:meth:`UserAgent.call`) and a queue of
:class:`IncomingCall` objects; a :class:`Call` offers ``reinvite()``, ``bye()`` and a queue
of :class:`IncomingReInvite` / :class:`CallEnded` events. Media are not handled here: SDP
goes in and out as :class:`SessionDescription`, and the caller opens RTP/UDPTL sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
from dataclasses import dataclass

from .dialog import Dialog, new_branch, new_call_id, new_tag
from .digest import Credentials, authorize
from .errors import DialogError, DigestError, SdpParseError, SipLayerError
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

logger = logging.getLogger(__name__)

ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS"


class CallFailed(SipLayerError):
    """A request got a final error response, or none (``status`` 408 then)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class CallEnded:
    """The call is over; ``reason`` is ``"bye"`` (remote), ``"local"`` or ``"no ack"``."""

    reason: str


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
            return self._confirm(invite, response, destination, peer, offer)
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

    async def _invite_once(self, invite: SipRequest, peer: Address, timeout: float) -> SipResponse:
        transaction, queue = self._start(invite, peer)
        provisional = False
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        cancelled = False
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
                return item
        finally:
            self._waiters.pop(transaction, None)

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
        peer = outbound_proxy or _peer_of(dialog, peer)
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
            call = self._find(event.response)
            if call is not None and call.last_ack is not None and event.response.status < 300:
                self.layer.send_stateless(call.last_ack, call.peer)  # 2xx retransmitted

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
        try:
            request.contacts[0]
        except IndexError:
            self._respond(
                transaction, make_response(request, 400, "Missing Contact", to_tag=new_tag())
            )
            return
        incoming = IncomingCall(self, transaction, request, offer, source)
        self._pending[transaction] = incoming
        self.incoming.put_nowait(incoming)


class IncomingCall:
    """An INVITE that started a new call; answer with ``ringing``/``accept``/``reject``."""

    def __init__(
        self,
        ua: UserAgent,
        transaction: ServerInviteTransaction,
        request: SipRequest,
        offer: SessionDescription | None,
        source: Address,
    ) -> None:
        self.ua = ua
        self.transaction = transaction
        self.request = request
        self.offer = offer
        self.source = source
        self.local_tag = new_tag()
        self.cancelled = asyncio.Event()

    def ringing(self, status: int = 180) -> None:
        """Send a provisional response (180 Ringing or 183 Session Progress)."""
        self.ua._respond(
            self.transaction, make_response(self.request, status, to_tag=self.local_tag)
        )

    def reject(
        self,
        status: int,
        reason: str | None = None,
        extra_headers: list[tuple[str, str]] | None = None,
    ) -> None:
        """Refuse the call (486 busy, 488 no acceptable media, 401 with a challenge...)."""
        self.ua._pending.pop(self.transaction, None)
        response = make_response(
            self.request, status, reason, to_tag=self.local_tag, extra_headers=extra_headers
        )
        with contextlib.suppress(ValueError):  # already answered (e.g. CANCEL raced us)
            self.ua._respond(self.transaction, response)

    def accept(self, answer: SessionDescription) -> Call:
        """Answer 200 with ``answer`` (an offer, if the INVITE had none) and return the call."""
        if self.cancelled.is_set():
            raise CallFailed(487, "the caller cancelled")
        self.ua._pending.pop(self.transaction, None)
        dialog = Dialog.as_uas(self.request, self.local_tag, self.ua.contact)
        response = make_response(
            self.request,
            200,
            to_tag=self.local_tag,
            contact=self.ua.contact,
            body=bytes(answer),
            extra_headers=[("Allow", ALLOW)],
        )
        peer = _peer_of(dialog, self.source)
        call = Call(self.ua, dialog, peer, answer, self.offer)
        call.invite_transaction = self.transaction
        self.ua._calls[dialog.id] = call
        self.ua._respond(self.transaction, response)
        return call


class IncomingReInvite:
    """A re-INVITE from the peer (e.g. the switch to T.38); ``accept`` or ``reject`` it."""

    def __init__(self, call: Call, transaction: ServerInviteTransaction, request: SipRequest):
        self.call = call
        self.transaction = transaction
        self.request = request
        self.offer: SessionDescription | None = None

    def accept(self, answer: SessionDescription) -> None:
        """Answer 200 with ``answer``; the call's SDPs are updated."""
        response = make_response(
            self.request,
            200,
            contact=self.call.ua.contact,
            body=bytes(answer),
            extra_headers=[("Allow", ALLOW)],
        )
        self.call.local_sdp = answer
        if self.offer is not None:
            self.call.remote_sdp = self.offer
        self.call.invite_transaction = self.transaction
        self.call.ua._respond(self.transaction, response)

    def reject(self, status: int = 488, reason: str | None = None) -> None:
        """Refuse the new session; the old one stays."""
        self.call.ua._respond(self.transaction, make_response(self.request, status, reason))


class Call:
    """An established call (a confirmed or early-confirmed INVITE dialog)."""

    def __init__(
        self,
        ua: UserAgent,
        dialog: Dialog,
        peer: Address,
        local_sdp: SessionDescription,
        remote_sdp: SessionDescription | None,
    ) -> None:
        self.ua = ua
        self.dialog = dialog
        self.peer = peer
        self.local_sdp = local_sdp
        self.remote_sdp = remote_sdp
        self.events: asyncio.Queue[IncomingReInvite | CallEnded] = asyncio.Queue()
        self.confirmed = asyncio.Event()
        self.ended = asyncio.Event()
        self.end_reason: str | None = None
        self.last_ack: SipRequest | None = None
        self.invite_transaction: ServerInviteTransaction | None = None
        self._reinvite_pending = False
        self._tasks: set[asyncio.Task[None]] = set()

    async def reinvite(
        self, offer: SessionDescription, timeout: float = 32.0
    ) -> SessionDescription:
        """Send a re-INVITE with ``offer``; return the peer's answer.

        Raises :class:`CallFailed` on an error response (491 on glare: retry later).
        """
        if self._reinvite_pending:
            raise CallFailed(491, "a re-INVITE is already pending")
        self._reinvite_pending = True
        try:
            invite = self.dialog.create_request(
                "INVITE", self.ua._via(), body=bytes(offer), extra_headers=[("Allow", ALLOW)]
            )
            response = await self.ua._invite_once(invite, self.peer, timeout)
        finally:
            self._reinvite_pending = False
        if response.status >= 300:
            raise CallFailed(response.status, response.reason)
        self.dialog.receive_response(response)
        ack = self.dialog.create_ack(invite, self.ua._via())
        self.last_ack = ack
        self.ua.layer.send_stateless(ack, self.peer)
        self.ua._shell.flush()
        try:
            answer = SessionDescription.parse(response.body)
        except SdpParseError as exc:
            raise CallFailed(488, f"bad SDP in the answer: {exc}") from exc
        self.local_sdp, self.remote_sdp = offer, answer
        return answer

    async def bye(self) -> None:
        """End the call (no-op if it has ended)."""
        if self.ended.is_set():
            return
        self._end("local")
        bye = self.dialog.create_request("BYE", self.ua._via())
        with contextlib.suppress(CallFailed):
            await self.ua._request(bye, self.peer)

    def bye_soon(self, reason: str = "local") -> None:
        """Send BYE from synchronous code (event handlers)."""
        if self.ended.is_set():
            return
        self.end_reason = reason
        task = asyncio.get_running_loop().create_task(self.bye())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def acked(self, ack: SipRequest) -> None:
        """The ACK for our 2xx arrived (it may carry the answer to our late offer)."""
        if ack.body and self.remote_sdp is None:
            with contextlib.suppress(SdpParseError):
                self.remote_sdp = SessionDescription.parse(ack.body)
        self.confirmed.set()

    def on_request(self, transaction: ServerTransaction, request: SipRequest) -> None:
        """An in-dialog request from the peer."""
        ua = self.ua
        if request.method == "BYE":
            ua._respond(transaction, make_response(request, 200))
            self._end("bye")
        elif request.method == "INVITE":
            assert isinstance(transaction, ServerInviteTransaction)
            if self._reinvite_pending:
                ua._respond(transaction, make_response(request, 491))
                return
            reinvite = IncomingReInvite(self, transaction, request)
            if request.body:
                try:
                    reinvite.offer = SessionDescription.parse(request.body)
                except SdpParseError as exc:
                    reason = f"Bad Request (SDP: {str(exc)[:60]})"
                    ua._respond(transaction, make_response(request, 400, reason))
                    return
            self.events.put_nowait(reinvite)
        else:
            ua._respond(transaction, make_response(request, 405, extra_headers=[("Allow", ALLOW)]))

    def _end(self, reason: str) -> None:
        if self.ended.is_set():
            return
        self.end_reason = self.end_reason or reason
        self.ended.set()
        self.ua._calls.pop(self.dialog.id, None)
        self.events.put_nowait(CallEnded(self.end_reason))


def _next_attempt(invite: SipRequest) -> SipRequest:
    """The same INVITE with a new branch and the next CSeq (RFC 3261 22.2)."""
    headers = invite.headers.copy()
    via = invite.top_via
    via.params["branch"] = new_branch()
    headers.set_all("Via", [str(via)])
    headers.set("CSeq", f"{invite.cseq.seq + 1} INVITE")
    return SipRequest("INVITE", invite.uri, headers, invite.body)


def _peer_of(dialog: Dialog, source: Address) -> Address:
    """Where in-dialog requests go: the next hop if it is an IP address, else the source."""
    next_hop = dialog.route_set[0].uri if dialog.route_set else dialog.remote_target
    host, port = next_hop.host_port()
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return source
    return host, port


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


def _uri_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
