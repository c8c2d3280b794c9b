"""One fax call's flow, sans-I/O: the SIP signalling, the T.38 switch and the fax session.

A :class:`FaxCallFlow` sits on a :class:`~faxline.sip.agent.UserAgentCore` (it sends its
INVITE, answers, re-INVITEs and BYEs through it, as aioquic's HTTP/3 layer sits on its QUIC
connection) and owns its call's :class:`~faxline.telephony.media.CallMedia`. It is driven
by whoever routes the core's events about its call to :meth:`FaxCallFlow.handle_sip`,
ticks its media every 20 ms (:meth:`FaxCallFlow.tick`) and fires its timers
(:meth:`FaxCallFlow.get_timer` / :meth:`FaxCallFlow.handle_timer`); every method takes
``now``. When the call is over, :attr:`FaxCallFlow.result` holds its
:class:`~faxline.telephony.results.SipFaxResult`. The behaviour is the one described in
:mod:`faxline.telephony.faxcall`, whose asyncio functions run flows over real sockets.
"""

from __future__ import annotations

import logging
import random

from faxline.fax.audio import AudioFaxSession
from faxline.fax.errors import FaxError
from faxline.fax.events import Completed, FaxResult, PageTransferred
from faxline.fax.job import Direction, FaxJob
from faxline.fax.session import FaxSession
from faxline.fax.t38 import T38FaxSession
from faxline.sip.agent import UserAgentCore
from faxline.sip.call import (
    Call,
    CallFailed,
    IncomingInvite,
    IncomingReInvite,
    OutgoingInvite,
    OutgoingRequest,
)
from faxline.sip.digest import Credentials
from faxline.sip.errors import NotAcceptable
from faxline.sip.events import (
    CallAnswered,
    CallConfirmed,
    CallEnded,
    Handle,
    InviteFailed,
    ReInviteAnswered,
    ReInviteFailed,
    ReInviteReceived,
    RequestAnswered,
    RequestTimedOut,
    UaEvent,
)
from faxline.sip.negotiation import LocalMedia, NegotiatedMedia, negotiated_media
from faxline.sip.sdp import SessionDescription
from faxline.sip.uri import SipUri
from faxline.telephony import policy
from faxline.telephony.media import CallMedia, MaxDuration, MediaFailed, MediaTimeout
from faxline.telephony.results import Ending, SipFaxResult, T38Mode

logger = logging.getLogger(__name__)

SENDER_CLEARING_S = 1.0
"""After the sender's phase E (DCN sent), time for the last media to drain before BYE."""
RECEIVER_CLEARING_S = 4.0
"""After the receiver's phase E, how long it waits for the sender's BYE before its own."""
BYE_WAIT_S = 1.0
"""How long we wait for the answer to our BYE (a vanished far end never answers)."""
ACK_WAIT_S = 5.0
"""How long the answerer waits for the ACK before its T.38 re-INVITE goes out anyway."""
REINVITE_TIMEOUT_S = 32.0
GLARE_PAUSE_S = (0.5, 2.0)
"""After a 491 (glare), the T.38 re-INVITE is tried again after a random pause this long."""
GLARE_TRIES = 3
T38_REFUSALS = (488, 415, 606)
"""Answers by which a far end says it will not do T.38 (or not the way we asked)."""


class FaxCallFlow:
    """One call carrying one fax; create it with :meth:`dial` or :meth:`answer`."""

    def __init__(
        self,
        ua: UserAgentCore,
        media: CallMedia,
        job: FaxJob,
        mode: T38Mode,
        local: LocalMedia,
        *,
        calling: bool,
        rng: random.Random,
    ) -> None:
        self.ua = ua
        self.media = media
        self.job = job
        self.mode = mode
        self.local = local
        self.calling = calling
        self.rng = rng
        self.sdp = policy.SdpVersions(session_id=rng.randrange(1, 2**31))
        self.invite: OutgoingInvite | None = None
        self.incoming: IncomingInvite | None = None
        self.call: Call | None = None
        self.session: FaxSession | None = None
        self.pages = 0
        self.phase_e = False
        self.result: SipFaxResult | None = None
        self.finished = False
        self._offer: SessionDescription | None = None
        self._sip: tuple[int, str] = (200, "OK")
        self._deadlines: dict[str, float] = {}
        self._reinvite_tries = 0
        self._waiting_for_ack = False
        self._late_answer = False
        self._ending: SipFaxResult | None = None
        self._bye: OutgoingRequest | None = None
        self._t38_offer: SessionDescription | None = None  # of our re-INVITE in flight

    # -- creation -----------------------------------------------------------------------

    @classmethod
    def dial(
        cls,
        ua: UserAgentCore,
        media: CallMedia,
        job: FaxJob,
        mode: T38Mode,
        local: LocalMedia,
        *,
        uri: SipUri,
        peer: tuple[str, int],
        now: float,
        rng: random.Random,
        from_uri: SipUri | None = None,
        credentials: Credentials | None = None,
        answer_timeout_s: float = 60.0,
        outbound_proxy: bool = False,
    ) -> FaxCallFlow:
        """Call ``uri`` (through ``peer``) to send ``job``'s document."""
        flow = cls(ua, media, job, mode, local, calling=True, rng=rng)
        flow._offer = policy.caller_offer(mode, local, flow.sdp)
        flow.invite = ua.invite(
            uri,
            flow._offer,
            peer,
            now,
            from_uri=from_uri,
            credentials=credentials,
            answer_timeout=answer_timeout_s,
            outbound_proxy=outbound_proxy,
        )
        return flow

    @classmethod
    def answer(
        cls,
        ua: UserAgentCore,
        media: CallMedia,
        job: FaxJob,
        mode: T38Mode,
        local: LocalMedia,
        incoming: IncomingInvite,
        *,
        now: float,
        rng: random.Random,
    ) -> FaxCallFlow:
        """Answer ``incoming`` to receive a fax into ``job`` (or refuse it at once)."""
        flow = cls(ua, media, job, mode, local, calling=False, rng=rng)
        flow.incoming = incoming
        flow._answer(incoming, now)
        return flow

    @property
    def handles(self) -> list[Handle]:
        """The user agent handles whose events this flow takes."""
        return [h for h in (self.invite, self.incoming, self.call) if h is not None]

    # -- driving ------------------------------------------------------------------------

    def handle_sip(self, event: UaEvent, now: float) -> None:
        """An event of the user agent core about one of :attr:`handles`."""
        if self.finished:
            return
        if isinstance(event, (RequestAnswered, RequestTimedOut)):
            if event.request is self._bye:
                self._finish_ending()
            return
        if self._ending is not None:
            if isinstance(event, CallEnded) and event.reason != "local":
                self._finish_ending()  # BYEs crossed: nothing more to wait for
            return
        if isinstance(event, InviteFailed):
            self._finish(_failed_call(event.status, event.reason, self.mode, event.timed_out))
        elif isinstance(event, CallAnswered):
            self._answered(event.call, now)
        elif isinstance(event, CallConfirmed):
            self._confirmed(now)
        elif isinstance(event, ReInviteReceived):
            self._on_reinvite(event.reinvite, now)
        elif isinstance(event, ReInviteAnswered) and event.offer is self._t38_offer:
            self._reinvite_done(event.offer, event.answer, None, now)
        elif isinstance(event, ReInviteFailed) and event.offer is self._t38_offer:
            self._reinvite_done(event.offer, None, CallFailed(event.status, event.reason), now)
        elif isinstance(event, CallEnded) and event.reason != "local":
            self._remote_ended(event.reason, now)

    def tick(self, now: float, blocks: int = 1) -> None:
        """Move the media on ``blocks`` 20 ms blocks and react to what they report."""
        self.media.tick(now, blocks)
        while (event := self.media.next_event()) is not None and self._ending is None:
            if isinstance(event, Completed):
                self.phase_e = True
                clearing = (
                    SENDER_CLEARING_S
                    if self.job.direction is Direction.SEND
                    else RECEIVER_CLEARING_S
                )
                self._deadlines["clearing"] = now + clearing
            elif isinstance(event, PageTransferred):
                self.pages = event.page
            elif isinstance(event, MediaTimeout):
                logger.warning("no media from the far end for %.1f s: hanging up", event.quiet_s)
                self._end(Ending.COMPLETED if self.phase_e else Ending.MEDIA_TIMEOUT, now)
            elif isinstance(event, MaxDuration):
                logger.warning("call reached its maximum duration (%.0f s)", event.duration_s)
                self._end(Ending.COMPLETED if self.phase_e else Ending.MAX_DURATION, now)
            elif isinstance(event, MediaFailed):
                self._end(Ending.MEDIA_ERROR, now)

    def get_timer(self) -> float | None:
        """The flow's earliest deadline (clearing, T.38 offer, ACK and BYE waits)."""
        return min(self._deadlines.values(), default=None)

    def handle_timer(self, now: float) -> None:
        """Fire the flow's due deadlines."""
        for name, deadline in sorted(self._deadlines.items(), key=lambda item: item[1]):
            if deadline > now or self.finished:
                break
            if self._deadlines.pop(name, None) is None:
                continue
            if name == "clearing":
                self._end(Ending.COMPLETED, now)
            elif name == "t38_offer":
                self._t38_offer_due(now)
            elif name == "ack_wait":
                self._send_t38_reinvite(now)
            elif name == "bye_wait":
                self._finish_ending()

    def abort(self, now: float) -> None:
        """Give up at once (the caller's task was cancelled): CANCEL or BYE, no waiting."""
        if self.finished:
            return
        if self.invite is not None and self.call is None:
            self.ua.cancel(self.invite, now)
        if self.incoming is not None and self.call is None:
            self.ua.reject(self.incoming, 480, now, "Temporarily Unavailable")
        self.media.stop()
        fax = self._hang_session_up()
        if self.call is not None:
            self.ua.bye(self.call, now)
        self.result = self._ending or SipFaxResult(
            fax, self.media.transport, *self._sip, Ending.REMOTE_BYE
        )
        self._deadlines.clear()
        self.finished = True

    # -- set-up -------------------------------------------------------------------------

    def _answer(self, incoming: IncomingInvite, now: float) -> None:
        stream: NegotiatedMedia | None = None
        if incoming.offer is not None:
            try:
                answer, stream = policy.answer_initial(
                    incoming.offer, self.mode, self.local, self.sdp
                )
            except NotAcceptable as exc:
                self.ua.reject(incoming, 488, now)
                reason = f"Not Acceptable Here: {exc}"
                self._finish(SipFaxResult(None, None, 488, reason, Ending.REJECTED))
                return
        else:
            answer = self._offer = policy.caller_offer(self.mode, self.local, self.sdp)
        if incoming.cancelled:
            self._finish(SipFaxResult(None, None, 487, "Request Terminated", Ending.CANCELLED))
            return
        self.ua.ring(incoming, now)
        try:
            self.call = self.ua.accept(incoming, answer, now)
        except CallFailed as exc:
            self._finish(SipFaxResult(None, None, exc.status, exc.reason, Ending.CANCELLED))
            return
        if stream is None:
            self._late_answer = True  # the ACK brings the answer to our offer
            return
        self._run(stream, now)

    def _answered(self, call: Call, now: float) -> None:
        self.call = call
        stream = None
        if call.remote_sdp is not None and self._offer is not None:
            stream = self._chosen(self._offer, call.remote_sdp)
        if stream is None:
            logger.warning("call answered without a usable stream; hanging up")
            ended = Ending.T38_REFUSED if self.mode is T38Mode.ONLY else Ending.REJECTED
            self._hang_up(
                SipFaxResult(None, None, 200, "answered without usable media", ended), now
            )
            return
        self._run(stream, now)

    def _confirmed(self, now: float) -> None:
        if self._late_answer:
            self._late_answer = False
            assert self.call is not None and self._offer is not None
            remote = self.call.remote_sdp
            stream = self._chosen(self._offer, remote) if remote is not None else None
            if stream is None:
                reason = "no usable answer in the ACK"
                self._hang_up(SipFaxResult(None, None, 200, reason, Ending.REJECTED), now)
                return
            self._run(stream, now)
        elif self._waiting_for_ack:
            self._send_t38_reinvite(now)

    def _chosen(
        self, offer: SessionDescription, answer: SessionDescription
    ) -> NegotiatedMedia | None:
        try:
            streams = negotiated_media(offer, answer, local_is_offer=True)
        except NotAcceptable:
            return None
        return policy.choose_stream(streams, self.mode)

    def _run(self, stream: NegotiatedMedia, now: float) -> None:
        if stream.kind == "image":
            self._start_t38(stream, now)
        else:
            self._start_audio(stream, now)
            if not self.calling and self.mode is not T38Mode.NEVER:
                self._offer_t38(0.0, now)

    # -- the switch to T.38 -------------------------------------------------------------

    def _on_reinvite(self, reinvite: IncomingReInvite, now: float) -> None:
        offer = reinvite.offer
        call = reinvite.call
        if offer is None:
            # No offer: a refresh; offering what we have keeps the call as it is.
            self.ua.accept_reinvite(reinvite, call.local_sdp, now)
            return
        current = self.media.transport or "audio"
        answered = policy.answer_reinvite(
            offer,
            self.mode,
            current=current,
            may_switch=self.pages == 0 and not self.phase_e,
            local=self.local,
            sdp=self.sdp,
        )
        if answered is None:
            logger.info("refusing a re-INVITE (on %s, mode %s)", current, self.mode)
            self.ua.reject_reinvite(reinvite, now, 488)
            return
        answer, stream = answered
        self.ua.accept_reinvite(reinvite, answer, now)
        kind = "t38" if stream.kind == "image" else "audio"
        if kind == current:
            self.media.update_remote(_remote(stream))
        else:
            logger.info("switching to T.38 at the far end's request")
            self._start_t38(stream, now)

    def _offer_t38(self, delay: float, now: float) -> None:
        self._reinvite_tries += 1
        if delay <= 0:
            self._t38_offer_due(now)
        else:
            self._deadlines["t38_offer"] = now + delay

    def _t38_offer_due(self, now: float) -> None:
        # No new INVITE transaction while the first one waits for its ACK.
        if self.call is not None and not self.call.confirmed:
            self._waiting_for_ack = True
            self._deadlines["ack_wait"] = now + ACK_WAIT_S
            return
        self._send_t38_reinvite(now)

    def _send_t38_reinvite(self, now: float) -> None:
        self._waiting_for_ack = False
        self._deadlines.pop("ack_wait", None)
        if self.media.transport == "t38" or self.call is None:
            return  # the far end's own re-INVITE got there first
        offer = self._t38_offer = policy.t38_offer(self.local, self.sdp)
        try:
            self.ua.reinvite(self.call, offer, now, timeout=REINVITE_TIMEOUT_S)
        except CallFailed as exc:  # the dialog broke meanwhile (say, a BYE crossed)
            self._reinvite_done(offer, None, exc, now)

    def _reinvite_done(
        self,
        offer: SessionDescription,
        answer: SessionDescription | None,
        failure: CallFailed | None,
        now: float,
    ) -> None:
        if failure is None and answer is not None:
            stream = None
            try:
                streams = negotiated_media(offer, answer, local_is_offer=True)
                stream = next((s for s in streams if s.kind == "image"), None)
            except NotAcceptable:
                pass
            if stream is not None:
                if self.media.transport != "t38":
                    logger.info("the far end accepted T.38")
                    self._start_t38(stream, now)
                else:
                    self.media.update_remote(_remote(stream))
                return
            failure = CallFailed(488, "answer without a T.38 stream")
        assert failure is not None
        if failure.status == 491 and self._reinvite_tries < GLARE_TRIES:
            self._offer_t38(self.rng.uniform(*GLARE_PAUSE_S), now)
            return
        logger.info("the far end refused T.38: %s %s", failure.status, failure.reason)
        if self.mode is T38Mode.ONLY:
            self._end(Ending.T38_REFUSED, now)

    # -- sessions -----------------------------------------------------------------------

    def _start_audio(self, stream: NegotiatedMedia, now: float) -> None:
        session: AudioFaxSession | None = None
        if self.mode is not T38Mode.ONLY:
            session = AudioFaxSession(self.job, calling=self.calling)
        self._replace(session)
        assert stream.payload_type is not None
        self.media.start_audio(session, _remote(stream), stream.payload_type, now)

    def _start_t38(self, stream: NegotiatedMedia, now: float) -> None:
        session = T38FaxSession(self.job, calling=self.calling)
        self._replace(session)
        self.media.start_t38(session, _remote(stream), stream.remote_t38, now)

    def _replace(self, session: FaxSession | None) -> None:
        old, self.session = self.session, session
        if old is not None:
            old.close()

    def _hang_session_up(self) -> FaxResult | None:
        """Hang the session up (a no-op after phase E), close it, return its result."""
        session = self.session
        if session is None:
            return None
        result = session.result
        if not session.closed:
            try:
                result = session.hangup()
            except FaxError:
                logger.exception("cannot hang the fax session up")
        session.close()
        return result

    # -- the end ------------------------------------------------------------------------

    def _remote_ended(self, reason: str, now: float) -> None:
        if self._late_answer:
            self._late_answer = False
            reason_text = "no usable answer in the ACK"
            self._finish(SipFaxResult(None, None, 200, reason_text, Ending.REJECTED))
            return
        if self.phase_e:
            ending = Ending.COMPLETED
        else:
            ending = Ending.NO_ACK if reason == "no ack" else Ending.REMOTE_BYE
        self._end(ending, now, remote_gone=True)

    def _end(self, ending: Ending, now: float, *, remote_gone: bool = False) -> None:
        """The established call ends: stop the media, hang the session up, BYE."""
        if self._ending is not None or self.finished:
            return
        transport = self.media.transport
        self.media.stop()
        fax = self._hang_session_up()
        result = SipFaxResult(fax, transport, *self._sip, ending)
        if remote_gone:
            self._finish(result)
        else:
            self._hang_up(result, now)

    def _hang_up(self, result: SipFaxResult, now: float) -> None:
        """Send BYE and finish with ``result`` once it is answered (or after BYE_WAIT_S)."""
        self._ending = result
        self._deadlines.clear()
        self._bye = self.ua.bye(self.call, now) if self.call is not None else None
        if self._bye is None:
            self._finish_ending()
        else:
            self._deadlines["bye_wait"] = now + BYE_WAIT_S

    def _finish_ending(self) -> None:
        assert self._ending is not None
        self._finish(self._ending)

    def _finish(self, result: SipFaxResult) -> None:
        self._deadlines.clear()
        self.media.stop()
        if self.session is not None and not self.session.closed:
            self._hang_session_up()
        self.result = result
        self.finished = True
        fax = result.fax
        logger.info(
            "fax call ended (%s) on %s: %s",
            result.ended,
            result.transport,
            fax.completion_text if fax else result.sip_status,
        )


def _failed_call(status: int, reason: str, mode: T38Mode, timed_out: bool) -> SipFaxResult:
    if status == 487 and timed_out:
        # The far end only confirms the CANCEL we sent because nobody answered.
        status, reason = 408, f"no answer (cancelled): {reason}"
    if status in (408, 480):
        ended = Ending.NO_ANSWER
    elif mode is T38Mode.ONLY and status in T38_REFUSALS:
        ended = Ending.T38_REFUSED
    else:
        ended = Ending.REJECTED
    return SipFaxResult(None, None, status, reason, ended)


def _remote(stream: NegotiatedMedia) -> tuple[str, int]:
    return stream.remote_address, stream.remote_port
