"""Sending and receiving a fax over SIP: the call flows.

Sending (:func:`send_fax`, we are the caller and the T.30 calling side):

1. The document is checked (:class:`~faxline.fax.errors.FaxDocumentError` is raised
   before anything is dialled), the RTP and UDPTL sockets are opened, and the INVITE
   goes out with G.711 audio (PCMU, PCMA), or with a T.38 image stream alone in
   ``T38Mode.ONLY``. The UA sends CANCEL when ``answer_timeout_s`` passes after a
   provisional response (and gives up with 408 when nothing at all came back).
2. A final error ends the attempt: ``SipFaxResult(fax=None, sip_status=...)``, with
   ``ended`` ``no_answer`` (408, 480, our own CANCEL, reported as 408), ``t38_refused``
   (``only`` and 488/415/606) or ``rejected`` (anything else: 486, 404, 503...).
3. On 200 the fax session starts on the negotiated stream (audio, or T.38 when the
   answer accepted our image stream).
4. A T.38 re-INVITE from the far end (the usual way a gateway switches) is accepted
   while no page has been transferred on audio (``prefer``/``only``): the 200 goes out,
   the audio session is closed and a T.38 session starts on the far end's UDPTL port.
   ``never`` answers 488; a re-INVITE that keeps the transport (a refresh, a new port)
   is answered and the media follows it.
5. When our session reaches T.30 phase E (it has sent DCN) we wait
   :data:`SENDER_CLEARING_S` for the last packets to drain, then send BYE.

Receiving (:func:`receive_fax`, we answer and are the T.30 called side):

1. The offer decides the answer (see :mod:`.policy`): audio alone when possible, or the
   offered image stream (at once in ``only``); no usable stream is answered 488. We send
   180 and then 200, and the fax session starts. An INVITE without SDP (late offer) gets
   our offer in the 200 (as the caller's would be) and the fax starts on what the ACK's
   answer accepts.
2. ``prefer``/``only`` on audio: once the caller's ACK is in, we re-INVITE with a T.38
   image stream. On 200 we switch sessions as above. On refusal (488, 415, 606, any
   error) ``prefer`` stays on G.711; ``only`` hangs up (``ended="t38_refused"``). A 491
   (glare) is retried after a short random pause. In ``only`` the audio stream carries
   silence, not the fax, until T.38 is up.
3. After our phase E we wait :data:`RECEIVER_CLEARING_S` for the sender's BYE (a sender
   hangs up after its DCN), then send BYE ourselves.

Both, at any time:

- BYE from the far end: the session is hung up (``hangup()``, since a receiver that
  missed DCN never ends by itself) and the result shows what was transferred
  (``ended="completed"`` if our phase E had come, else ``"remote_bye"``).
- The media watchdog (:class:`~faxline.telephony.streams.Watchdog`): nothing received
  for ``media_timeout_s`` (over T.38 at least 8 s, T.30's longest silence being 6 s, and
  not counting while we send page data) gives
  ``ended="media_timeout"``; ``max_duration_s`` after the answer gives
  ``"max_duration"``. Both hang the session up and send BYE, waiting at most
  :data:`BYE_WAIT_S` for its answer.
- Malformed RTP/UDPTL is dropped at the socket and logged (see :mod:`.streams`).
- Cancelling the task running the flow closes the sockets and the session and sends
  BYE in the background.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from faxline.fax.audio import AudioFaxSession
from faxline.fax.document import check_document
from faxline.fax.errors import FaxError
from faxline.fax.events import Completed, FaxResult, PageTransferred
from faxline.fax.job import Direction, FaxJob
from faxline.fax.session import FaxSession
from faxline.fax.t38 import T38FaxSession
from faxline.sip.call import Call, CallEnded, CallFailed, IncomingCall, IncomingReInvite
from faxline.sip.digest import Credentials
from faxline.sip.errors import NotAcceptable, SipLayerError
from faxline.sip.negotiation import LocalMedia, NegotiatedMedia, negotiated_media
from faxline.sip.sdp import SessionDescription
from faxline.sip.ua import UserAgent
from faxline.sip.uri import SipUri
from faxline.telephony import policy
from faxline.telephony.media import (
    MaxDuration,
    MediaEvent,
    MediaFailed,
    MediaLink,
    MediaOptions,
    MediaTimeout,
)
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
T38_REFUSALS = (488, 415, 606)
"""Answers by which a far end says it will not do T.38 (or not the way we asked)."""

_background: set[asyncio.Task[None]] = set()


@dataclass(frozen=True)
class _ClearingDue:
    """Our phase E was a clearing delay ago: time to hang up."""


@dataclass(frozen=True)
class _ReinviteDone:
    """The outcome of our re-INVITE to T.38."""

    offer: SessionDescription
    answer: SessionDescription | None
    failure: CallFailed | None


_Item = MediaEvent | IncomingReInvite | CallEnded | _ClearingDue | _ReinviteDone


async def send_fax(
    ua: UserAgent,
    uri: str,
    job: FaxJob,
    *,
    t38: T38Mode = T38Mode.PREFER,
    destination: tuple[str, int] | None = None,
    credentials: Credentials | None = None,
    caller_id: str | None = None,
    media_host: str = "127.0.0.1",
    answer_timeout_s: float = 60.0,
    media_timeout_s: float = 20.0,
    max_duration_s: float = 1800.0,
    media: MediaOptions | None = None,
) -> SipFaxResult:
    """Call ``uri`` and send ``job``'s document; see the module docstring for the flow.

    ``caller_id`` is the user part of our From URI. SIP failures are returned, never
    raised (a next hop that cannot be resolved or reached is reported as 503). Raises
    :class:`~faxline.fax.errors.FaxDocumentError` for a document SpanDSP cannot send and
    :class:`~faxline.telephony.errors.MediaSetupError` when the media sockets cannot be
    opened. ``media`` tunes the media shell (tests only, see :class:`MediaOptions`).
    """
    mode = T38Mode(t38)
    if job.direction is not Direction.SEND:
        raise ValueError("send_fax needs a sending job (FaxJob.send)")
    check_document(job.path)
    inbox: asyncio.Queue[_Item] = asyncio.Queue()
    link = await MediaLink.open(
        media_host,
        inbox.put_nowait,
        media_timeout_s=media_timeout_s,
        max_duration_s=max_duration_s,
        options=media,
    )
    try:
        sdp = policy.SdpVersions()
        local = LocalMedia(media_host, link.audio_port, link.image_port)
        offer = policy.caller_offer(mode, local, sdp)
        from_uri = None
        if caller_id:
            host = ua.address[0]
            from_uri = SipUri(host=f"[{host}]" if ":" in host else host, user=caller_id)
        loop = asyncio.get_running_loop()
        dialled = loop.time()
        try:
            call = await ua.call(
                uri,
                offer,
                destination=destination,
                from_uri=from_uri,
                credentials=credentials,
                timeout=answer_timeout_s,
            )
        except CallFailed as exc:
            timed_out = loop.time() - dialled >= answer_timeout_s
            return _failed_call(exc, mode, timed_out)
        except OSError as exc:
            # The next hop's name does not resolve, or no route to it: worth a retry.
            reason = f"cannot reach the far end: {exc}"
            return SipFaxResult(None, None, 503, reason, Ending.REJECTED)
        stream = None
        if call.remote_sdp is not None:
            with contextlib.suppress(NotAcceptable):
                streams = negotiated_media(offer, call.remote_sdp, local_is_offer=True)
                stream = policy.choose_stream(streams, mode)
        if stream is None:
            logger.warning("call to %s answered without a usable stream; hanging up", uri)
            await _bye(call)
            ended = Ending.T38_REFUSED if mode is T38Mode.ONLY else Ending.REJECTED
            return SipFaxResult(None, None, 200, "answered without usable media", ended)
        runner = _FaxCall(call, link, inbox, job, mode, local, sdp, calling=True)
        return await runner.run(stream, sip_status=200, sip_reason="OK")
    finally:
        link.close()


async def receive_fax(
    incoming: IncomingCall,
    job: FaxJob,
    *,
    t38: T38Mode = T38Mode.PREFER,
    media_host: str = "127.0.0.1",
    media_timeout_s: float = 20.0,
    max_duration_s: float = 1800.0,
    media: MediaOptions | None = None,
) -> SipFaxResult:
    """Answer ``incoming`` and receive a fax into ``job``; see the module docstring.

    An INVITE without an offer (late offer) gets our offer in the 200 (as a caller's
    would be) and the fax starts on what the ACK's answer accepts. Raises
    :class:`~faxline.telephony.errors.MediaSetupError` (after answering 500) when the
    media sockets cannot be opened.
    """
    mode = T38Mode(t38)
    if job.direction is not Direction.RECEIVE:
        raise ValueError("receive_fax needs a receiving job (FaxJob.receive)")
    offer = incoming.offer
    inbox: asyncio.Queue[_Item] = asyncio.Queue()
    try:
        link = await MediaLink.open(
            media_host,
            inbox.put_nowait,
            media_timeout_s=media_timeout_s,
            max_duration_s=max_duration_s,
            options=media,
        )
    except BaseException:
        incoming.reject(500, "Server Internal Error (no media sockets)")
        raise
    try:
        sdp = policy.SdpVersions()
        local = LocalMedia(media_host, link.audio_port, link.image_port)
        stream: NegotiatedMedia | None = None
        if offer is not None:
            try:
                answer, stream = policy.answer_initial(offer, mode, local, sdp)
            except NotAcceptable as exc:
                incoming.reject(488)
                reason = f"Not Acceptable Here: {exc}"
                return SipFaxResult(None, None, 488, reason, Ending.REJECTED)
        else:
            answer = policy.caller_offer(mode, local, sdp)
        if incoming.cancelled.is_set():
            return SipFaxResult(None, None, 487, "Request Terminated", Ending.CANCELLED)
        incoming.ringing()
        try:
            call = incoming.accept(answer)
        except CallFailed as exc:
            return SipFaxResult(None, None, exc.status, exc.reason, Ending.CANCELLED)
        if stream is None:
            stream = await _late_answer(call, answer, mode)
            if stream is None:
                await _bye(call)
                reason = "no usable answer in the ACK"
                return SipFaxResult(None, None, 200, reason, Ending.REJECTED)
        runner = _FaxCall(call, link, inbox, job, mode, local, sdp, calling=False)
        return await runner.run(stream, sip_status=200, sip_reason="OK")
    finally:
        link.close()


async def _late_answer(
    call: Call, offer: SessionDescription, mode: T38Mode
) -> NegotiatedMedia | None:
    """The stream the caller's ACK accepted from the offer in our 200 (late offer)."""
    confirmed = asyncio.ensure_future(call.confirmed.wait())
    ended = asyncio.ensure_future(call.ended.wait())
    try:
        # The UA retransmits the 200 until the ACK comes, or ends the call (Timer H).
        await asyncio.wait({confirmed, ended}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        confirmed.cancel()
        ended.cancel()
    if call.remote_sdp is None:
        return None
    with contextlib.suppress(NotAcceptable):
        streams = negotiated_media(offer, call.remote_sdp, local_is_offer=True)
        return policy.choose_stream(streams, mode)
    return None


def _failed_call(exc: CallFailed, mode: T38Mode, timed_out: bool) -> SipFaxResult:
    status, reason = exc.status, exc.reason
    if status == 487 and timed_out:
        # The far end only confirms the CANCEL we sent because nobody answered.
        status, reason = 408, f"no answer (cancelled): {exc.reason}"
    if status in (408, 480):
        ended = Ending.NO_ANSWER
    elif mode is T38Mode.ONLY and status in T38_REFUSALS:
        ended = Ending.T38_REFUSED
    else:
        ended = Ending.REJECTED
    return SipFaxResult(None, None, status, reason, ended)


async def _bye(call: Call) -> None:
    """Send BYE; wait a little for its answer, then let it finish in the background."""
    task = asyncio.get_running_loop().create_task(call.bye())
    _background.add(task)
    task.add_done_callback(_background.discard)
    await asyncio.wait({task}, timeout=BYE_WAIT_S)


def _remote(stream: NegotiatedMedia) -> tuple[str, int]:
    return stream.remote_address, stream.remote_port


class _FaxCall:
    """One established call carrying one fax: reacts to media, SIP and timer items."""

    def __init__(
        self,
        call: Call,
        link: MediaLink,
        inbox: asyncio.Queue[_Item],
        job: FaxJob,
        mode: T38Mode,
        local: LocalMedia,
        sdp: policy.SdpVersions,
        *,
        calling: bool,
    ) -> None:
        self.call = call
        self.link = link
        self.inbox = inbox
        self.job = job
        self.mode = mode
        self.local = local
        self.sdp = sdp
        self.calling = calling
        self.session: FaxSession | None = None
        self.pages = 0
        self.phase_e = False
        self._tasks: list[asyncio.Task[None]] = []
        self._clearing: asyncio.TimerHandle | None = None
        self._reinvite_tries = 0

    async def run(
        self, stream: NegotiatedMedia, *, sip_status: int, sip_reason: str
    ) -> SipFaxResult:
        """Run the fax to its end and hang up; return the result."""
        ended: Ending | None = None
        fax: FaxResult | None = None
        remote_gone = False
        try:
            self._forward_call_events()
            if stream.kind == "image":
                self._start_t38(stream)
            else:
                self._start_audio(stream)
                if not self.calling and self.mode is not T38Mode.NEVER:
                    self._offer_t38(delay=0.0)
            while ended is None:
                item = await self.inbox.get()
                ended, remote_gone = self._handle(item)
            fax = self._finish()
        finally:
            transport = self.link.transport
            self.link.stop()
            for task in self._tasks:
                task.cancel()
            if self._clearing is not None:
                self._clearing.cancel()
            if fax is None and self.session is not None:
                fax = self._finish()  # cancelled or failed: still hang the session up
            if self.session is not None:
                self.session.close()
            if not remote_gone:
                if ended is None:  # cancelled: no time to wait for the BYE's answer
                    self.call.bye_soon()
                else:
                    await _bye(self.call)
        logger.info(
            "fax call ended (%s) on %s: %s", ended, transport, fax.completion_text if fax else "-"
        )
        return SipFaxResult(fax, transport, sip_status, sip_reason, ended)

    # -- items ----------------------------------------------------------------------------

    def _handle(self, item: _Item) -> tuple[Ending | None, bool]:
        """React to one item; return (why the call ends, or None; whether the far end left)."""
        if isinstance(item, Completed):
            self.phase_e = True
            delay = (
                SENDER_CLEARING_S if self.job.direction is Direction.SEND else RECEIVER_CLEARING_S
            )
            loop = asyncio.get_running_loop()
            self._clearing = loop.call_later(delay, self.inbox.put_nowait, _ClearingDue())
        elif isinstance(item, PageTransferred):
            self.pages = item.page
        elif isinstance(item, _ClearingDue):
            return Ending.COMPLETED, False
        elif isinstance(item, MediaTimeout):
            logger.warning("no media from the far end for %.1f s: hanging up", item.quiet_s)
            return (Ending.COMPLETED if self.phase_e else Ending.MEDIA_TIMEOUT), False
        elif isinstance(item, MaxDuration):
            logger.warning("call reached its maximum duration (%.0f s)", item.duration_s)
            return (Ending.COMPLETED if self.phase_e else Ending.MAX_DURATION), False
        elif isinstance(item, MediaFailed):
            return Ending.MEDIA_ERROR, False
        elif isinstance(item, CallEnded):
            if self.phase_e:
                return Ending.COMPLETED, True
            return (Ending.NO_ACK if item.reason == "no ack" else Ending.REMOTE_BYE), True
        elif isinstance(item, IncomingReInvite):
            self._on_reinvite(item)
        elif isinstance(item, _ReinviteDone):
            return self._on_reinvite_done(item), False
        return None, False

    def _on_reinvite(self, reinvite: IncomingReInvite) -> None:
        offer = reinvite.offer
        if offer is None:
            # No offer: a refresh; offering what we have keeps the call as it is.
            reinvite.accept(self.call.local_sdp)
            return
        current = self.link.transport or "audio"
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
            reinvite.reject(488)
            return
        answer, stream = answered
        reinvite.accept(answer)
        kind = "t38" if stream.kind == "image" else "audio"
        if kind == current:
            self.link.update_remote(_remote(stream))
        else:
            logger.info("switching to T.38 at the far end's request")
            self._start_t38(stream)

    def _on_reinvite_done(self, done: _ReinviteDone) -> Ending | None:
        failure = done.failure
        if failure is None and done.answer is not None:
            stream = None
            with contextlib.suppress(NotAcceptable):
                streams = negotiated_media(done.offer, done.answer, local_is_offer=True)
                stream = next((s for s in streams if s.kind == "image"), None)
            if stream is not None:
                if self.link.transport != "t38":
                    logger.info("the far end accepted T.38")
                    self._start_t38(stream)
                else:
                    self.link.update_remote(_remote(stream))
                return None
            failure = CallFailed(488, "answer without a T.38 stream")
        assert failure is not None
        if failure.status == 491 and self._reinvite_tries < 3:
            self._offer_t38(delay=random.uniform(0.5, 2.0))
            return None
        logger.info("the far end refused T.38: %s %s", failure.status, failure.reason)
        if self.mode is T38Mode.ONLY:
            return Ending.T38_REFUSED
        return None

    # -- sessions ---------------------------------------------------------------------------

    def _start_audio(self, stream: NegotiatedMedia) -> None:
        session: AudioFaxSession | None = None
        if self.mode is not T38Mode.ONLY:
            session = AudioFaxSession(self.job, calling=self.calling)
        self._replace(session)
        assert stream.payload_type is not None
        self.link.start_audio(session, _remote(stream), stream.payload_type)

    def _start_t38(self, stream: NegotiatedMedia) -> None:
        session = T38FaxSession(self.job, calling=self.calling)
        self._replace(session)
        self.link.start_t38(session, _remote(stream), stream.remote_t38)

    def _replace(self, session: FaxSession | None) -> None:
        old, self.session = self.session, session
        if old is not None:
            old.close()

    def _finish(self) -> FaxResult | None:
        """Hang the session up (a no-op after phase E) and return its result."""
        session = self.session
        if session is None or session.closed:
            return session.result if session is not None else None
        try:
            return session.hangup()
        except FaxError:
            logger.exception("cannot hang the fax session up")
            return session.result

    # -- tasks ------------------------------------------------------------------------------

    def _spawn(self, work: Callable[[], Coroutine[Any, Any, None]]) -> None:
        task = asyncio.get_running_loop().create_task(work())
        self._tasks.append(task)

    def _forward_call_events(self) -> None:
        async def forward() -> None:
            while True:
                event = await self.call.events.get()
                self.inbox.put_nowait(event)
                if isinstance(event, CallEnded):
                    return

        self._spawn(forward)

    def _offer_t38(self, delay: float) -> None:
        self._reinvite_tries += 1

        async def offer() -> None:
            if delay:
                await asyncio.sleep(delay)
            # No new INVITE transaction while the first one waits for its ACK.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.call.confirmed.wait(), ACK_WAIT_S)
            if self.link.transport == "t38":
                return  # the far end's own re-INVITE got there first
            t38_offer = policy.t38_offer(self.local, self.sdp)
            try:
                answer = await self.call.reinvite(t38_offer, timeout=REINVITE_TIMEOUT_S)
            except CallFailed as exc:
                self.inbox.put_nowait(_ReinviteDone(t38_offer, None, exc))
                return
            except SipLayerError as exc:  # the dialog broke meanwhile (say, a BYE crossed)
                failure = CallFailed(500, f"{type(exc).__name__}: {exc}")
                self.inbox.put_nowait(_ReinviteDone(t38_offer, None, failure))
                return
            self.inbox.put_nowait(_ReinviteDone(t38_offer, answer, None))

        self._spawn(offer)
