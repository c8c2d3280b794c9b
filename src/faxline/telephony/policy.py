"""Which SDP a fax endpoint sends and accepts, per :class:`T38Mode` (pure functions).

Offers and answers are built with :mod:`faxline.sip.negotiation`; this module only
decides which streams to put in them:

- the caller offers G.711 audio (``prefer``/``never``) or a T.38 image stream alone
  (``only``);
- the answerer accepts audio alone when it can (``prefer``/``never``; with ``prefer`` it
  re-INVITEs to T.38 afterwards), or the image stream alone when the offer has one and the
  mode allows it (the image stream first with ``only``);
- a re-INVITE from the far end is answered when it keeps the call on its current transport
  (a refresh, a new port) or moves it from audio to T.38 while that is still allowed;
  anything else gets 488 and the call stays as it is.
"""

from __future__ import annotations

from dataclasses import dataclass

from faxline.sip.errors import NotAcceptable
from faxline.sip.negotiation import (
    Capabilities,
    LocalMedia,
    NegotiatedMedia,
    answer_offer,
    make_offer,
    negotiated_media,
)
from faxline.sip.sdp import SessionDescription
from faxline.telephony.results import T38Mode

AUDIO_ONLY = Capabilities(t38=None)
"""G.711 (PCMU, PCMA), no T.38: offers and answers with an audio stream alone."""
IMAGE_ONLY = Capabilities(audio_payload_types=())
"""T.38 alone: answers that refuse the audio stream (port 0) and accept the image one."""
T38_CAPS = Capabilities()
"""Both; used to build image-only offers (``make_offer(..., audio=False, t38=True)``)."""


@dataclass
class SdpVersions:
    """Our SDP origin for one call: a session id (the caller picks it at random) and an
    increasing version."""

    session_id: int
    version: int = 0

    def next(self) -> int:
        """The version for the next description we send."""
        self.version += 1
        return self.version


def caller_offer(mode: T38Mode, local: LocalMedia, sdp: SdpVersions) -> SessionDescription:
    """The offer in our INVITE."""
    if mode is T38Mode.ONLY:
        return make_offer(
            T38_CAPS, local, session_id=sdp.session_id, version=sdp.next(), audio=False, t38=True
        )
    return make_offer(AUDIO_ONLY, local, session_id=sdp.session_id, version=sdp.next())


def t38_offer(local: LocalMedia, sdp: SdpVersions) -> SessionDescription:
    """The offer of the answerer's re-INVITE to T.38 (an image stream alone)."""
    return make_offer(
        T38_CAPS, local, session_id=sdp.session_id, version=sdp.next(), audio=False, t38=True
    )


def _answer(
    offer: SessionDescription, caps: Capabilities, local: LocalMedia, sdp: SdpVersions
) -> tuple[SessionDescription, NegotiatedMedia]:
    answer = answer_offer(offer, caps, local, session_id=sdp.session_id, version=sdp.version + 1)
    streams = negotiated_media(answer, offer, local_is_offer=False)
    if not streams:
        raise NotAcceptable("the offer's streams have no usable address")
    sdp.next()
    return answer, streams[0]


def answer_initial(
    offer: SessionDescription, mode: T38Mode, local: LocalMedia, sdp: SdpVersions
) -> tuple[SessionDescription, NegotiatedMedia]:
    """Our answer to an incoming INVITE's offer and the one stream it starts on.

    Raises :class:`NotAcceptable` (answer 488) when the mode allows nothing offered.
    """
    order: list[Capabilities]
    if mode is T38Mode.NEVER:
        order = [AUDIO_ONLY]
    elif mode is T38Mode.ONLY:
        order = [IMAGE_ONLY, AUDIO_ONLY]
    else:
        order = [AUDIO_ONLY, IMAGE_ONLY]
    failure: NotAcceptable | None = None
    for caps in order:
        try:
            return _answer(offer, caps, local, sdp)
        except NotAcceptable as exc:
            failure = exc
    assert failure is not None
    raise failure


def choose_stream(streams: list[NegotiatedMedia], mode: T38Mode) -> NegotiatedMedia | None:
    """The stream to run the fax on once our offer was answered (None: nothing usable)."""
    images = [s for s in streams if s.kind == "image"]
    audios = [s for s in streams if s.kind == "audio"]
    if mode is T38Mode.ONLY:
        return images[0] if images else None
    if mode is T38Mode.NEVER:
        return audios[0] if audios else None
    chosen = images or audios
    return chosen[0] if chosen else None


def answer_reinvite(
    offer: SessionDescription,
    mode: T38Mode,
    *,
    current: str,
    may_switch: bool,
    local: LocalMedia,
    sdp: SdpVersions,
) -> tuple[SessionDescription, NegotiatedMedia] | None:
    """Answer a re-INVITE's offer, or None to refuse it with 488.

    ``current`` is the transport the call runs on (``"audio"`` or ``"t38"``);
    ``may_switch`` whether moving from audio to T.38 is still safe (no page has been
    transferred on audio yet).
    """
    has_image = any(m.is_t38 and m.port != 0 for m in offer.media)
    has_audio = any(m.media.lower() == "audio" and m.port != 0 for m in offer.media)
    candidates: list[Capabilities] = []
    if has_image and mode is not T38Mode.NEVER and (current == "t38" or may_switch):
        candidates.append(IMAGE_ONLY)
    if has_audio and current == "audio":
        candidates.append(AUDIO_ONLY)
    for caps in candidates:
        try:
            return _answer(offer, caps, local, sdp)
        except NotAcceptable:
            continue
    return None
