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
  BYE (or CANCEL, while it rings) without waiting for its answer.

Where it lives: the flow is the sans-I/O :class:`~faxline.telephony.flow.FaxCallFlow`
(its timers: :data:`SENDER_CLEARING_S`, :data:`RECEIVER_CLEARING_S`, :data:`BYE_WAIT_S`,
:data:`ACK_WAIT_S`, the 491 pause); the functions here open the sockets and hand the flow
to the event loop's :class:`~faxline.telephony.clock.MediaClock`.
"""

from __future__ import annotations

import asyncio
import random

from faxline.fax.document import check_document
from faxline.fax.job import Direction, FaxJob
from faxline.sip.digest import Credentials
from faxline.sip.negotiation import LocalMedia
from faxline.sip.ua import IncomingCall, UserAgent, resolve
from faxline.sip.uri import SipUri
from faxline.telephony.clock import MediaClock, MediaSockets
from faxline.telephony.errors import MediaSetupError
from faxline.telephony.flow import (
    ACK_WAIT_S,
    BYE_WAIT_S,
    RECEIVER_CLEARING_S,
    SENDER_CLEARING_S,
    FaxCallFlow,
)
from faxline.telephony.media import CallMedia
from faxline.telephony.results import Ending, SipFaxResult, T38Mode

__all__ = [
    "ACK_WAIT_S",
    "BYE_WAIT_S",
    "RECEIVER_CLEARING_S",
    "SENDER_CLEARING_S",
    "receive_fax",
    "send_fax",
]


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
    clock: MediaClock | None = None,
    rng: random.Random | None = None,
) -> SipFaxResult:
    """Call ``uri`` and send ``job``'s document; see the module docstring for the flow.

    ``caller_id`` is the user part of our From URI. SIP failures are returned, never
    raised (a next hop that cannot be resolved is reported as 503). Raises
    :class:`~faxline.fax.errors.FaxDocumentError` for a document SpanDSP cannot send and
    :class:`~faxline.telephony.errors.MediaSetupError` when the media sockets cannot be
    opened. ``clock`` drives the media (the event loop's 20 ms clock by default); ``rng``
    picks SSRCs, sequence numbers and pauses (a fresh one by default).
    """
    mode = T38Mode(t38)
    if job.direction is not Direction.SEND:
        raise ValueError("send_fax needs a sending job (FaxJob.send)")
    check_document(job.path)
    clock = clock or MediaClock.running()
    rng = rng or random.Random()
    sockets = MediaSockets.open(media_host)
    try:
        target = SipUri.parse(uri)
        try:
            peer = destination or await resolve(target)
        except OSError as exc:
            # The next hop's name does not resolve: worth a retry.
            reason = f"cannot reach the far end: {exc}"
            return SipFaxResult(None, None, 503, reason, Ending.REJECTED)
        from_uri = None
        if caller_id:
            host = ua.address[0]
            from_uri = SipUri(host=f"[{host}]" if ":" in host else host, user=caller_id)
        now = asyncio.get_running_loop().time()
        flow = FaxCallFlow.dial(
            ua.core,
            _media(clock, rng, media_timeout_s, max_duration_s, now),
            job,
            mode,
            LocalMedia(media_host, sockets.rtp_port, sockets.udptl_port),
            uri=target,
            peer=peer,
            now=now,
            rng=rng,
            from_uri=from_uri,
            credentials=credentials,
            answer_timeout_s=answer_timeout_s,
            outbound_proxy=destination is not None,
        )
        return await clock.run(flow, sockets, ua)
    finally:
        sockets.close()


async def receive_fax(
    incoming: IncomingCall,
    job: FaxJob,
    *,
    t38: T38Mode = T38Mode.PREFER,
    media_host: str = "127.0.0.1",
    media_timeout_s: float = 20.0,
    max_duration_s: float = 1800.0,
    clock: MediaClock | None = None,
    rng: random.Random | None = None,
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
    clock = clock or MediaClock.running()
    rng = rng or random.Random()
    try:
        sockets = MediaSockets.open(media_host)
    except MediaSetupError:
        incoming.reject(500, "Server Internal Error (no media sockets)")
        raise
    try:
        ua = incoming.ua
        now = asyncio.get_running_loop().time()
        flow = FaxCallFlow.answer(
            ua.core,
            _media(clock, rng, media_timeout_s, max_duration_s, now),
            job,
            mode,
            LocalMedia(media_host, sockets.rtp_port, sockets.udptl_port),
            incoming.handle,
            now=now,
            rng=rng,
        )
        return await clock.run(flow, sockets, ua)
    finally:
        sockets.close()


def _media(
    clock: MediaClock, rng: random.Random, media_timeout_s: float, max_duration_s: float, now: float
) -> CallMedia:
    return CallMedia(
        rng=rng,
        media_timeout_s=media_timeout_s,
        max_duration_s=max_duration_s,
        now=now,
        t38_floor_s=clock.t38_floor_s,
    )
