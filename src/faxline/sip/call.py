"""Calls as the application sees them: incoming calls, established calls, re-INVITEs.

These objects hold per-call state and answer through their :class:`UserAgent`; they are
created by it, never directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .dialog import Dialog, new_tag
from .errors import SdpParseError, SipLayerError
from .message import SipRequest, make_response
from .sdp import SessionDescription
from .transaction import Address, ServerInviteTransaction, ServerTransaction

if TYPE_CHECKING:
    from .ua import UserAgent

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

    def ringing(self, status: int = 180, sdp: SessionDescription | None = None) -> None:
        """Send 180 Ringing, or 183 Session Progress with ``sdp`` for early media."""
        response = make_response(
            self.request,
            status,
            to_tag=self.local_tag,
            contact=self.ua.contact,
            body=bytes(sdp) if sdp is not None else b"",
        )
        self.ua._respond(self.transaction, response)

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
        peer = peer_of(dialog, self.source)
        call = Call(self.ua, dialog, peer, answer, self.offer)
        call.invite_transaction = self.transaction
        self.ua._calls[dialog.id] = call
        self.ua._respond(self.transaction, response)
        return call


class IncomingReInvite:
    """A re-INVITE from the peer (e.g. the switch to T.38); ``accept`` or ``reject`` it."""

    def __init__(
        self, call: Call, transaction: ServerInviteTransaction, request: SipRequest
    ) -> None:
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


def peer_of(dialog: Dialog, source: Address) -> Address:
    """Where in-dialog requests go: the next hop if it is an IP address, else the source."""
    next_hop = dialog.route_set[0].uri if dialog.route_set else dialog.remote_target
    host, port = next_hop.host_port()
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return source
    return host, port
