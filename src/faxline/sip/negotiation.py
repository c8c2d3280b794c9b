"""SDP offer/answer for a fax endpoint (RFC 3264, T.38 Annex D).

:func:`make_offer` builds our offer (G.711 audio and/or T.38 image), :func:`answer_offer`
answers a peer's offer from our :class:`Capabilities` or raises :class:`NotAcceptable`
(answer 488), and :func:`negotiated_media` reads what an offer/answer pair agreed on.
A stream we refuse keeps its place in the answer with port 0 (RFC 3264 6).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from .errors import NotAcceptable
from .sdp import (
    Attribute,
    Connection,
    MediaDescription,
    Origin,
    SessionDescription,
    T38Options,
)

# Static payload types of G.711 (RFC 3551).
PCMU = 0
PCMA = 8
_G711_NAMES = {"pcmu": PCMU, "pcma": PCMA}
_REVERSE_DIRECTION = {
    "sendrecv": "sendrecv",
    "sendonly": "recvonly",
    "recvonly": "sendonly",
    "inactive": "inactive",
}


def _default_t38() -> T38Options:
    return T38Options(
        version=0,
        max_bit_rate=14400,
        rate_management="transferredTCF",
        max_buffer=1800,
        max_datagram=400,
        udp_ec="t38UDPRedundancy",
    )


@dataclass(frozen=True)
class Capabilities:
    """What we can do: G.711 payload types in preference order, DTMF events, T.38."""

    audio_payload_types: tuple[int, ...] = (PCMU, PCMA)
    telephone_event: bool = False
    t38: T38Options | None = field(default_factory=_default_t38)


@dataclass(frozen=True)
class LocalMedia:
    """Where we receive: our address and the ports of our RTP and UDPTL sockets."""

    address: str
    audio_port: int
    image_port: int
    username: str = "faxline"
    session_name: str = "faxline"


@dataclass(frozen=True)
class NegotiatedMedia:
    """One stream both sides accepted, seen from our side."""

    kind: str  # "audio" or "image"
    remote_address: str
    remote_port: int
    direction: str  # our direction: sendrecv, sendonly, recvonly, inactive
    payload_type: int | None = None  # audio: the G.711 payload type to send
    telephone_event: int | None = None  # audio: payload type of RFC 4733 events
    t38: T38Options | None = None  # image: the answer's (agreed) options
    remote_t38: T38Options | None = None  # image: the peer's own limits (max datagram...)


def _addrtype(address: str) -> str:
    return "IP6" if ":" in address else "IP4"


def _session(local: LocalMedia, session_id: int, version: int) -> SessionDescription:
    return SessionDescription(
        origin=Origin(
            local.username,
            str(session_id),
            str(version),
            local.address,
            addrtype=_addrtype(local.address),
        ),
        name=local.session_name,
        connection=Connection(local.address, addrtype=_addrtype(local.address)),
    )


def _audio_attributes(
    payload_types: list[int], event_pt: int | None, fmtp: str | None
) -> list[Attribute]:
    attrs = [
        Attribute("rtpmap", f"{pt} {'PCMU' if pt == PCMU else 'PCMA'}/8000") for pt in payload_types
    ]
    if event_pt is not None:
        attrs.append(Attribute("rtpmap", f"{event_pt} telephone-event/8000"))
        attrs.append(Attribute("fmtp", f"{event_pt} {fmtp or '0-16'}"))
    attrs.append(Attribute("ptime", "20"))
    return attrs


def make_offer(
    capabilities: Capabilities,
    local: LocalMedia,
    *,
    session_id: int,
    version: int,
    audio: bool = True,
    t38: bool = False,
) -> SessionDescription:
    """Build an offer with an audio stream, a T.38 stream, or both (audio first)."""
    session = _session(local, session_id, version)
    if audio:
        pts = list(capabilities.audio_payload_types)
        event_pt = 101 if capabilities.telephone_event else None
        formats = [str(pt) for pt in pts] + ([str(event_pt)] if event_pt is not None else [])
        media = MediaDescription("audio", local.audio_port, "RTP/AVP", formats)
        media.attributes = [*_audio_attributes(pts, event_pt, None), Attribute("sendrecv")]
        session.media.append(media)
    if t38:
        if capabilities.t38 is None:
            raise ValueError("cannot offer T.38 without T.38 capabilities")
        media = MediaDescription("image", local.image_port, "udptl", ["t38"])
        media.attributes = capabilities.t38.to_attributes()
        session.media.append(media)
    if not session.media:
        raise ValueError("an offer needs at least one stream")
    return session


def answer_offer(
    offer: SessionDescription,
    capabilities: Capabilities,
    local: LocalMedia,
    *,
    session_id: int,
    version: int,
) -> SessionDescription:
    """Answer ``offer``: one m-line per offered m-line, refused ones with port 0.

    Raises :class:`NotAcceptable` when no stream can be accepted.
    """
    answer = _session(local, session_id, version)
    accepted_audio = accepted_image = False
    for offered in offer.media:
        media: MediaDescription | None = None
        if offered.port != 0 and offer.connection_address(offered):
            if offered.media.lower() == "audio" and not accepted_audio:
                media = _answer_audio(offered, capabilities, local)
                accepted_audio = media is not None
            elif offered.is_t38 and capabilities.t38 is not None and not accepted_image:
                media = _answer_t38(offered, capabilities.t38, local)
                accepted_image = True
        if media is None:
            media = MediaDescription(offered.media, 0, offered.proto, list(offered.formats))
        answer.media.append(media)
    if not (accepted_audio or accepted_image):
        raise NotAcceptable("no acceptable media stream in the offer")
    return answer


def _answer_audio(
    offered: MediaDescription, capabilities: Capabilities, local: LocalMedia
) -> MediaDescription | None:
    if offered.proto.upper() != "RTP/AVP":
        return None
    rtpmaps = offered.rtpmaps()
    chosen: list[int] = []
    event_pt: int | None = None
    for fmt in offered.formats:
        if not (fmt.isascii() and fmt.isdigit()) or int(fmt) > 127:
            continue
        pt = int(fmt)
        mapping = rtpmaps.get(fmt)
        name = mapping.encoding.lower() if mapping is not None else None
        if mapping is not None and mapping.clock_rate != 8000:
            continue
        is_g711 = name == "pcmu" if pt == PCMU else name == "pcma" if pt == PCMA else False
        if mapping is None and pt in (PCMU, PCMA):
            is_g711 = True
        if is_g711:
            if pt in capabilities.audio_payload_types and pt not in chosen:
                chosen.append(pt)
        elif name == "telephone-event" and capabilities.telephone_event and event_pt is None:
            event_pt = pt
    if not chosen:
        return None
    formats = [str(pt) for pt in chosen] + ([str(event_pt)] if event_pt is not None else [])
    media = MediaDescription("audio", local.audio_port, "RTP/AVP", formats)
    fmtp = offered.fmtp(str(event_pt)) if event_pt is not None else None
    media.attributes = [
        *_audio_attributes(chosen, event_pt, fmtp),
        Attribute(_REVERSE_DIRECTION[offered.direction]),
    ]
    return media


def _min(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


def _answer_t38(offered: MediaDescription, ours: T38Options, local: LocalMedia) -> MediaDescription:
    theirs = offered.t38
    if theirs.udp_ec is None:
        ec = None
    elif theirs.udp_ec == "t38UDPNoEC" or ours.udp_ec in (None, "t38UDPNoEC"):
        ec = "t38UDPNoEC"
    else:
        # We send and repair with redundancy; FEC offers are answered with redundancy,
        # which T.38 Annex D allows the answerer to choose.
        ec = "t38UDPRedundancy"
    agreed = replace(
        ours,
        version=min(ours.version, theirs.version),
        max_bit_rate=_min(ours.max_bit_rate, theirs.max_bit_rate),
        fill_bit_removal=ours.fill_bit_removal and theirs.fill_bit_removal,
        transcoding_mmr=ours.transcoding_mmr and theirs.transcoding_mmr,
        transcoding_jbig=ours.transcoding_jbig and theirs.transcoding_jbig,
        # The answer must echo the offerer's TCF method (Annex D.2.3).
        rate_management=theirs.rate_management,
        udp_ec=ec,
    )
    media = MediaDescription("image", local.image_port, "udptl", ["t38"])
    media.attributes = agreed.to_attributes()
    return media


def negotiated_media(
    local: SessionDescription, remote: SessionDescription, *, local_is_offer: bool
) -> list[NegotiatedMedia]:
    """The streams an offer/answer pair agreed on, one per m-line accepted by both sides."""
    if len(local.media) != len(remote.media):
        raise NotAcceptable("the answer's m-lines do not match the offer's")
    answer = remote if local_is_offer else local
    result: list[NegotiatedMedia] = []
    for ours, theirs, agreed in zip(local.media, remote.media, answer.media, strict=True):
        address = remote.connection_address(theirs)
        if ours.port == 0 or theirs.port == 0 or address is None:
            continue
        if ours.media.lower() == "audio":
            pts = [int(f) for f in agreed.formats if f.isascii() and f.isdigit()]
            maps = agreed.rtpmaps()
            audio_pts = [
                pt
                for pt in pts
                if pt in (PCMU, PCMA)
                and (str(pt) not in maps or maps[str(pt)].encoding.lower() in _G711_NAMES)
            ]
            events = [
                int(fmt)
                for fmt, m in maps.items()
                if m.encoding.lower() == "telephone-event" and fmt.isdigit()
            ]
            if not audio_pts:
                continue
            result.append(
                NegotiatedMedia(
                    kind="audio",
                    remote_address=address,
                    remote_port=theirs.port,
                    direction=ours.direction,
                    payload_type=audio_pts[0],
                    telephone_event=events[0] if events else None,
                )
            )
        elif ours.is_t38 and theirs.is_t38:
            result.append(
                NegotiatedMedia(
                    kind="image",
                    remote_address=address,
                    remote_port=theirs.port,
                    direction=ours.direction,
                    t38=agreed.t38,
                    remote_t38=theirs.t38,
                )
            )
    return result
