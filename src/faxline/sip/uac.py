"""The client half of the user agent core: what becomes of the requests we send.

:class:`ClientSide` sends INVITEs (new calls and re-INVITEs), OPTIONS, REGISTER and BYE
through the transaction layer and turns their answers into events: it ACKs every 2xx to an
INVITE and re-ACKs a retransmitted one, CANCELs a call that rings past its answer timeout
(and fails one nothing answered with 408), ACKs and hangs up a 2xx that comes after we gave
up on its INVITE, and answers one 401/407 challenge per request. It is a part of
:class:`~faxline.sip.agent.UserAgentCore`, which owns it and routes answers to it.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING

from .call import Call, OutgoingInvite, OutgoingRequest, peer_of
from .dialog import Dialog, new_branch, new_tag
from .digest import Credentials, authorize
from .errors import DialogError, DigestError, SdpParseError
from .events import (
    CallAnswered,
    CallProgress,
    InviteFailed,
    ReInviteAnswered,
    ReInviteFailed,
    RequestAnswered,
    RequestTimedOut,
)
from .message import SipRequest, SipResponse
from .sdp import SessionDescription
from .transaction import Address, ClientTransaction, make_cancel

if TYPE_CHECKING:
    from .agent import UserAgentCore

ABANDONED_KEPT = 256
"""INVITEs given up on whose late 2xx we still recognise after their transaction ended."""


class ClientSide:
    """Our requests in flight, by client transaction."""

    def __init__(self, core: UserAgentCore) -> None:
        self._core = core
        self._layer = core.layer
        self._owners: dict[ClientTransaction, OutgoingInvite | OutgoingRequest] = {}
        self._swept_at = 0
        self._ringing: list[OutgoingInvite] = []
        self._abandoned: OrderedDict[tuple[str, int], OutgoingInvite] = OrderedDict()

    # -- sending ------------------------------------------------------------------------

    def send_invite(
        self,
        invite: SipRequest,
        peer: Address,
        offer: SessionDescription,
        now: float,
        *,
        call: Call | None = None,
        outbound_proxy: Address | None = None,
        credentials: Credentials | None = None,
        timeout: float,
    ) -> OutgoingInvite:
        """Send ``invite`` (a new call, or a re-INVITE of ``call``)."""
        transaction = self._layer.send_request(invite, peer, now)
        outgoing = OutgoingInvite(
            invite, peer, offer, call, outbound_proxy, credentials, transaction, now + timeout
        )
        self._owners[transaction] = outgoing
        self._ringing.append(outgoing)
        return outgoing

    def send(
        self,
        request: SipRequest,
        peer: Address,
        now: float,
        *,
        credentials: Credentials | None = None,
        call: Call | None = None,
    ) -> OutgoingRequest:
        """Send a non-INVITE request."""
        transaction = self._layer.send_request(request, peer, now)
        outgoing = OutgoingRequest(request, peer, credentials, transaction, call)
        self._owners[transaction] = outgoing
        return outgoing

    def cancel(self, invite: OutgoingInvite, now: float) -> None:
        """Give up on ``invite``: CANCEL it once it rings; a later 2xx is hung up."""
        if invite.done:
            return
        self._finish(invite)
        self._abandon(invite)
        if invite.provisional:
            self._send_cancel(invite, now)

    def hang_up(self, call: Call, now: float) -> None:
        """BYE a call nobody was told about (no ``CallEnded``)."""
        call.ended = True
        call.end_reason = "local"
        bye = call.dialog.create_request("BYE", self._core.via())
        self.send(bye, call.peer, now, call=call)

    # -- timers -------------------------------------------------------------------------

    def get_timer(self) -> float | None:
        """The earliest answer timeout."""
        deadlines = [i.deadline for i in self._ringing if i.deadline is not None]
        return min(deadlines, default=None)

    def handle_timer(self, now: float) -> None:
        """Cancel or fail the INVITEs whose answer timeout has passed."""
        for invite in [i for i in self._ringing if i.deadline is not None and i.deadline <= now]:
            invite.timed_out = True
            if invite.provisional and not invite.cancelled:
                self._send_cancel(invite, now)
                invite.deadline = now + 64 * self._layer.timers.t1  # for the 487
                continue
            # Nothing answered at all, or the CANCEL brought no final answer.
            self._abandon(invite)
            self._failed(invite, 408, "no answer")
        if len(self._owners) > 2 * self._swept_at + 64:
            self._owners = {t: o for t, o in self._owners.items() if not t.terminated}
            self._swept_at = len(self._owners)

    # -- answers ------------------------------------------------------------------------

    def receive_response(
        self, transaction: ClientTransaction, response: SipResponse, now: float
    ) -> None:
        """A response matched to one of our transactions."""
        owner = self._owners.get(transaction)
        if isinstance(owner, OutgoingInvite):
            self._invite_response(owner, response, now)
        elif isinstance(owner, OutgoingRequest):
            self._request_response(owner, response, now)
        else:
            self.stray(response, now)

    def transaction_failed(self, transaction: ClientTransaction, reason: str) -> None:
        """No final answer (Timer B/F) or a send error."""
        owner = self._owners.pop(transaction, None)
        if isinstance(owner, OutgoingInvite):
            self._failed(owner, 408, reason)
        elif isinstance(owner, OutgoingRequest) and not owner.done:
            owner.done = True
            self._forget_bye(owner)
            self._core.emit(RequestTimedOut(owner, reason))

    def stray(self, response: SipResponse, now: float) -> None:
        """A response no live transaction wants: a 2xx retransmission, or a late 2xx."""
        if not (200 <= response.status < 300 and response.cseq.method == "INVITE"):
            return
        call = self._core.calls.for_response(response)
        if call is not None:
            _reack(self._core, call, response)
            return
        late = self._abandoned.get((response.call_id, response.cseq.seq))
        if late is not None:
            self._hang_up_late(late, response, now)

    def _invite_response(self, invite: OutgoingInvite, response: SipResponse, now: float) -> None:
        status = response.status
        if status < 200:
            first = not invite.provisional
            invite.provisional = True
            if invite.abandoned and first and not invite.cancelled:
                self._send_cancel(invite, now)  # we gave up before it rang
            elif not invite.done and invite.call is None and status > 100:
                self._core.emit(CallProgress(invite, status))
            return
        if status < 300:
            if invite.call is not None:
                self._reinvite_accepted(invite, invite.call, response)
            else:
                self._invite_accepted(invite, response, now)
            return
        if invite.done:
            return  # the 487 to a CANCEL of an INVITE we gave up on, say
        if status in (401, 407) and invite.credentials is not None and invite.attempt == 1:
            retry = self._authorized(invite.invite, response, invite.credentials)
            if isinstance(retry, DigestError):
                self._failed(invite, status, f"cannot authenticate: {retry}")
                return
            self._owners.pop(invite.transaction, None)
            invite.invite = retry
            invite.attempt += 1
            invite.transaction = self._layer.send_request(retry, invite.peer, now)
            self._owners[invite.transaction] = invite
            return
        self._failed(invite, status, response.reason)

    def _invite_accepted(self, invite: OutgoingInvite, response: SipResponse, now: float) -> None:
        core = self._core
        known = core.calls.for_response(response)
        if known is not None:
            _reack(core, known, response)
            return
        if invite.done:
            self._hang_up_late(invite, response, now)
            return
        self._finish(invite)
        try:
            dialog = Dialog.as_uac(invite.invite, response)
        except DialogError as exc:
            # Without tags or Contact we cannot even ACK; the peer gives up by itself.
            core.emit(InviteFailed(invite, 502, f"unusable 2xx: {exc}"))
            return
        call = self._confirm(invite, dialog)
        try:
            call.remote_sdp = SessionDescription.parse(response.body)
        except SdpParseError as exc:
            self.hang_up(call, now)
            core.emit(InviteFailed(invite, 488, f"bad SDP in the answer: {exc}"))
            return
        core.emit(CallAnswered(invite, call))

    def _confirm(self, invite: OutgoingInvite, dialog: Dialog) -> Call:
        """ACK the 2xx that made ``dialog`` and keep the call (its 2xx may come again)."""
        # In-dialog requests follow the route set / remote target unless we were told to
        # use an outbound proxy (a trunk), which then stays the next hop.
        peer = invite.outbound_proxy or peer_of(dialog, invite.peer)
        ack = dialog.create_ack(invite.invite, self._core.via())
        self._layer.send_stateless(ack, peer)
        call = Call(dialog, peer, invite.offer, None, confirmed=True, last_ack=ack)
        self._core.calls.add(call)
        return call

    def _reinvite_accepted(self, invite: OutgoingInvite, call: Call, response: SipResponse) -> None:
        core = self._core
        if invite.done:
            # A retransmission (our ACK was lost), or a 2xx after we gave up: ACK it.
            ack = call.last_ack
            if ack is None or ack.cseq.seq != response.cseq.seq:
                ack = call.last_ack = call.dialog.create_ack(invite.invite, core.via())
            self._layer.send_stateless(ack, call.peer)
            return
        self._finish(invite)
        call.dialog.receive_response(response)
        ack = call.last_ack = call.dialog.create_ack(invite.invite, core.via())
        self._layer.send_stateless(ack, call.peer)
        if call.ended:
            return
        try:
            answer = SessionDescription.parse(response.body)
        except SdpParseError as exc:
            core.emit(ReInviteFailed(call, invite.offer, 488, f"bad SDP in the answer: {exc}"))
            return
        call.local_sdp, call.remote_sdp = invite.offer, answer
        core.emit(ReInviteAnswered(call, invite.offer, answer))

    def _failed(self, invite: OutgoingInvite, status: int, reason: str) -> None:
        if invite.done:
            return
        self._finish(invite)
        self._abandon(invite)  # a 2xx that still comes is hung up
        if invite.call is None:
            self._core.emit(InviteFailed(invite, status, reason, timed_out=invite.timed_out))
        else:
            self._core.emit(ReInviteFailed(invite.call, invite.offer, status, reason))

    def _finish(self, invite: OutgoingInvite) -> None:
        invite.done = True
        if invite in self._ringing:
            self._ringing.remove(invite)
        if invite.call is not None and invite.call.reinvite is invite:
            invite.call.reinvite = None

    def _send_cancel(self, invite: OutgoingInvite, now: float) -> None:
        invite.cancelled = True
        self._layer.send_request(make_cancel(invite.invite), invite.peer, now)

    def _abandon(self, invite: OutgoingInvite) -> None:
        invite.abandoned = True
        if invite.call is not None:
            return
        if len(self._abandoned) >= ABANDONED_KEPT:
            self._abandoned.popitem(last=False)
        self._abandoned[(invite.invite.call_id, invite.invite.cseq.seq)] = invite

    def _hang_up_late(self, invite: OutgoingInvite, response: SipResponse, now: float) -> None:
        """ACK a 2xx that came after we gave up on its INVITE, then BYE at once."""
        self._abandoned.pop((invite.invite.call_id, invite.invite.cseq.seq), None)
        try:
            dialog = Dialog.as_uac(invite.invite, response)
        except DialogError:
            return  # no tags or Contact: nothing can be sent in that dialog
        call = self._confirm(invite, dialog)  # kept until the BYE is answered: re-ACKs
        self.hang_up(call, now)

    # -- other requests -----------------------------------------------------------------

    def _request_response(
        self, request: OutgoingRequest, response: SipResponse, now: float
    ) -> None:
        if response.status < 200 or request.done:
            return
        status = response.status
        if status in (401, 407) and request.credentials is not None and request.attempt == 1:
            retry = self._authorized(request.request, response, request.credentials)
            if not isinstance(retry, DigestError):
                self._owners.pop(request.transaction, None)
                if retry.method == "REGISTER":
                    self._core.remember_authorization(retry)
                request.request = retry
                request.attempt += 1
                request.transaction = self._layer.send_request(retry, request.peer, now)
                self._owners[request.transaction] = request
                return
            response = SipResponse(status, f"cannot authenticate: {retry}", response.headers)
        request.done = True
        self._forget_bye(request)
        self._core.emit(RequestAnswered(request, response))

    def _authorized(
        self, request: SipRequest, challenge: SipResponse, credentials: Credentials
    ) -> SipRequest | DigestError:
        """The next attempt of ``request`` with the challenge answered (RFC 3261 22.2)."""
        headers = request.headers.copy()
        via = request.top_via
        via.params["branch"] = new_branch(self._core.rng)
        headers.set_all("Via", [str(via)])
        headers.set("CSeq", f"{request.cseq.seq + 1} {request.method}")
        retry = SipRequest(request.method, request.uri, headers, request.body)
        try:
            authorize(retry, challenge, credentials, cnonce=new_tag(self._core.rng))
        except DigestError as exc:
            return exc
        return retry

    def _forget_bye(self, request: OutgoingRequest) -> None:
        call = request.call
        if call is not None and request.request.method == "BYE":
            self._core.calls.remove(call)


def _reack(core: UserAgentCore, call: Call, response: SipResponse) -> None:
    """A 2xx we already ACKed came again: our ACK was lost, so send it again."""
    ack = call.last_ack
    if ack is not None and ack.cseq.seq == response.cseq.seq:
        core.layer.send_stateless(ack, call.peer)
