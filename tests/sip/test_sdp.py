from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from faxline.sip.errors import NotAcceptable, SdpParseError
from faxline.sip.message import parse_request
from faxline.sip.negotiation import (
    Capabilities,
    LocalMedia,
    answer_offer,
    make_offer,
    negotiated_media,
)
from faxline.sip.sdp import (
    Attribute,
    Connection,
    MediaDescription,
    Origin,
    RtpMap,
    SessionDescription,
    T38Options,
)

CAPTURES = Path(__file__).parent / "captures"
LOCAL = LocalMedia(address="192.0.2.10", audio_port=40000, image_port=40002)


def sdp(name: str) -> SessionDescription:
    return SessionDescription.parse((CAPTURES / name).read_bytes())


@pytest.mark.parametrize("name", sorted(p.name for p in CAPTURES.glob("*.sdp")))
def test_captured_sdp_round_trips(name: str) -> None:
    data = (CAPTURES / name).read_bytes()
    assert bytes(SessionDescription.parse(data)) == data


def test_asterisk_audio_offer() -> None:
    invite = parse_request((CAPTURES / "invite_asterisk.sip").read_bytes())
    offer = SessionDescription.parse(invite.body)
    assert bytes(offer) == invite.body
    (audio,) = offer.media
    assert (audio.media, audio.port, audio.proto) == ("audio", 17360, "RTP/AVP")
    assert audio.formats == ["0", "8", "101"]
    assert audio.rtpmaps()["101"] == RtpMap("telephone-event", 8000)
    assert audio.fmtp("101") == "0-16"
    assert audio.direction == "sendrecv"
    assert offer.connection_address(audio) == "198.51.100.7"


def test_t38_attributes_typed() -> None:
    (image,) = sdp("asterisk_t38.sdp").media
    assert image.is_t38
    assert image.t38 == T38Options(
        version=0,
        max_bit_rate=14400,
        rate_management="transferredTCF",
        max_buffer=400,
        max_datagram=400,
        udp_ec="t38UDPRedundancy",
    )


def test_t38_boolean_forms() -> None:
    valued = sdp("gateway_t38_valued_flags.sdp").media[0].t38
    assert not valued.fill_bit_removal and not valued.transcoding_mmr
    assert valued.max_bit_rate == 9600 and valued.max_datagram == 238
    flagged_sdp = sdp("gateway_t38_flag_forms.sdp")
    flagged = flagged_sdp.media[0].t38
    assert flagged.fill_bit_removal and flagged.transcoding_mmr and not flagged.transcoding_jbig
    assert flagged.version == 3 and flagged.rate_management == "localTCF"
    assert flagged.udp_ec == "t38UDPFEC"
    assert flagged_sdp.connection_address(flagged_sdp.media[0]) == "203.0.113.31"
    on = T38Options.from_attributes([Attribute("T38FaxFillBitRemoval", "1")])
    assert on.fill_bit_removal
    assert T38Options.from_attributes(on.to_attributes()) == on


@pytest.mark.parametrize(
    ("old", "new", "match"),
    [
        (b"v=0", b"v=1", "v=0"),
        (b"a=T38MaxBitRate:14400", b"a=T38MaxBitRate:fast", "T38MaxBitRate"),
        (b"a=T38FaxUdpEC:t38UDPRedundancy", b"a=T38FaxUdpEC:magic", "T38FaxUdpEC"),
        (b"m=image 4446", b"m=image 99999", "port"),
        (b"c=IN IP4 198.51.100.7\r\n", b"", "connection"),
        (b"s=Asterisk\r\n", b"", "s="),
        (b"t=0 0\r\n", b"", "t="),
        (b"t=0 0", b"t=0 0\r\nq=what", "unknown"),
        (b"m=image 4446 udptl t38", b"m=image 4446 udptl", "media line"),
    ],
)
def test_malformed_sdp(old: bytes, new: bytes, match: str) -> None:
    data = (CAPTURES / "asterisk_t38.sdp").read_bytes()
    assert old in data
    with pytest.raises(SdpParseError, match=match):
        SessionDescription.parse(data.replace(old, new, 1))


def test_answer_to_asterisk_audio() -> None:
    offer = SessionDescription.parse(
        parse_request((CAPTURES / "invite_asterisk.sip").read_bytes()).body
    )
    answer = answer_offer(offer, Capabilities(), LOCAL, session_id=7, version=1)
    (audio,) = answer.media
    assert audio.port == 40000 and audio.formats == ["0", "8"]
    assert answer.connection == Connection("192.0.2.10")
    reparsed = SessionDescription.parse(bytes(answer))
    assert bytes(reparsed) == bytes(answer)
    (stream,) = negotiated_media(answer, offer, local_is_offer=False)
    assert stream.kind == "audio" and stream.payload_type == 0
    assert (stream.remote_address, stream.remote_port) == ("198.51.100.7", 17360)
    assert stream.telephone_event is None


def test_answer_prefers_offer_order_and_keeps_telephone_event() -> None:
    caps = Capabilities(audio_payload_types=(0, 8), telephone_event=True)
    offer = sdp("audio_and_image.sdp")
    answer = answer_offer(offer, caps, LOCAL, session_id=7, version=1)
    audio, image = answer.media
    assert audio.formats == ["8", "0", "96"]
    assert audio.fmtp("96") == "0-15"
    assert image.port == 40002 and image.is_t38
    streams = negotiated_media(answer, offer, local_is_offer=False)
    assert [s.kind for s in streams] == ["audio", "image"]
    assert streams[0].payload_type == 8 and streams[0].telephone_event == 96
    assert streams[1].remote_t38 is not None and streams[1].remote_t38.max_datagram == 176


def test_t38_answer_rules() -> None:
    ours = T38Options(
        version=0,
        max_bit_rate=14400,
        max_buffer=1800,
        max_datagram=400,
        udp_ec="t38UDPRedundancy",
    )
    offer = sdp("gateway_t38_flag_forms.sdp")
    answer = answer_offer(offer, Capabilities(t38=ours), LOCAL, session_id=1, version=1)
    agreed = answer.media[0].t38
    assert agreed.version == 0
    assert agreed.max_bit_rate == 14400
    assert not agreed.fill_bit_removal and not agreed.transcoding_mmr
    assert agreed.rate_management == "localTCF"
    assert agreed.udp_ec == "t38UDPRedundancy"
    assert (agreed.max_buffer, agreed.max_datagram) == (1800, 400)
    low = answer_offer(
        sdp("gateway_t38_valued_flags.sdp"), Capabilities(t38=ours), LOCAL, session_id=1, version=1
    )
    assert low.media[0].t38.max_bit_rate == 9600


def test_refused_streams_keep_their_place() -> None:
    offer = sdp("audio_and_image.sdp")
    answer = answer_offer(offer, Capabilities(t38=None), LOCAL, session_id=1, version=1)
    assert [m.port for m in answer.media] == [40000, 0]
    assert answer.media[1].formats == ["t38"]
    with pytest.raises(NotAcceptable):
        answer_offer(sdp("video_only.sdp"), Capabilities(), LOCAL, session_id=1, version=1)
    with pytest.raises(NotAcceptable):
        answer_offer(
            sdp("asterisk_t38.sdp"), Capabilities(t38=None), LOCAL, session_id=1, version=1
        )


def test_port_zero_offer_stream_is_rejected() -> None:
    offer = sdp("audio_and_image.sdp")
    offer.media[1].port = 0
    answer = answer_offer(offer, Capabilities(), LOCAL, session_id=1, version=1)
    assert [m.port for m in answer.media] == [40000, 0]


def test_direction_is_mirrored() -> None:
    offer = sdp("audio_and_image.sdp")
    offer.media[0].attributes = [a for a in offer.media[0].attributes if a.name != "sendrecv"]
    offer.media[0].attributes.append(Attribute("sendonly"))
    answer = answer_offer(offer, Capabilities(), LOCAL, session_id=1, version=1)
    assert answer.media[0].direction == "recvonly"


def test_offer_and_answer_between_two_faxline_peers() -> None:
    caps = Capabilities()
    offer = make_offer(caps, LOCAL, session_id=5, version=2, audio=False, t38=True)
    assert offer.media[0].is_t38
    remote = LocalMedia(address="192.0.2.99", audio_port=50000, image_port=50002)
    answer = answer_offer(offer, caps, remote, session_id=9, version=1)
    (stream,) = negotiated_media(offer, answer, local_is_offer=True)
    assert stream.kind == "image" and stream.remote_port == 50002
    assert stream.t38 is not None and stream.t38.udp_ec == "t38UDPRedundancy"
    audio_offer = make_offer(caps, LOCAL, session_id=5, version=3)
    assert audio_offer.media[0].formats == ["0", "8"]


_words = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=8)


@st.composite
def descriptions(draw: st.DrawFn) -> SessionDescription:
    session = SessionDescription(
        origin=Origin(draw(_words), str(draw(st.integers(0, 2**40))), "1", "10.0.0.1"),
        name=draw(_words),
        connection=Connection(f"10.0.0.{draw(st.integers(1, 254))}"),
    )
    for _ in range(draw(st.integers(0, 3))):
        if draw(st.booleans()):
            media = MediaDescription("image", draw(st.integers(0, 65535)), "udptl", ["t38"])
            options = T38Options(
                version=draw(st.integers(0, 3)),
                max_bit_rate=draw(st.none() | st.sampled_from([2400, 9600, 14400, 33600])),
                fill_bit_removal=draw(st.booleans()),
                transcoding_jbig=draw(st.booleans()),
                rate_management=draw(st.sampled_from(["transferredTCF", "localTCF"])),
                max_datagram=draw(st.none() | st.integers(0, 65535)),
                udp_ec=draw(st.none() | st.sampled_from(["t38UDPRedundancy", "t38UDPFEC"])),
            )
            media.attributes = options.to_attributes()
        else:
            pts = draw(st.lists(st.sampled_from(["0", "8", "18", "101"]), min_size=1, unique=True))
            media = MediaDescription("audio", draw(st.integers(0, 65535)), "RTP/AVP", pts)
            media.attributes = [Attribute("ptime", "20"), Attribute(draw(_words))]
        session.media.append(media)
    return session


@settings(max_examples=200, deadline=None)
@given(descriptions())
def test_build_parse_build(description: SessionDescription) -> None:
    data = bytes(description)
    parsed = SessionDescription.parse(data)
    assert parsed == description
    assert bytes(parsed) == data
    for media in parsed.media:
        if media.is_t38:
            assert T38Options.from_attributes(media.attributes) == media.t38


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_arbitrary_bytes_raise_only_parse_errors(data: bytes) -> None:
    with contextlib.suppress(SdpParseError):
        SessionDescription.parse(data)


_SEED = (CAPTURES / "audio_and_image.sdp").read_bytes()


@settings(max_examples=300, deadline=None)
@given(st.integers(0, len(_SEED) - 1), st.binary(max_size=6))
def test_mutated_sdp_raises_only_parse_errors_and_answers_cleanly(pos: int, junk: bytes) -> None:
    data = _SEED[:pos] + junk + _SEED[pos + len(junk) :]
    try:
        offer = SessionDescription.parse(data)
    except SdpParseError:
        return
    with contextlib.suppress(NotAcceptable):
        answer_offer(offer, Capabilities(telephone_event=True), LOCAL, session_id=1, version=1)
