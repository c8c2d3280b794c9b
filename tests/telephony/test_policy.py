"""Which streams each T.38 mode offers and accepts (pure SDP decisions)."""

from __future__ import annotations

import pytest

from faxline.sip.errors import NotAcceptable
from faxline.sip.negotiation import Capabilities, LocalMedia, make_offer
from faxline.sip.sdp import SessionDescription
from faxline.telephony import T38Mode
from faxline.telephony.policy import (
    SdpVersions,
    answer_initial,
    answer_reinvite,
    caller_offer,
    t38_offer,
)

OURS = LocalMedia("127.0.0.1", 30000, 30002)
THEIRS = LocalMedia("127.0.0.1", 40000, 40002)


def offer(audio: bool, t38: bool) -> SessionDescription:
    return make_offer(Capabilities(), THEIRS, session_id=5, version=1, audio=audio, t38=t38)


def kinds(sdp: SessionDescription) -> list[tuple[str, int]]:
    return [(m.media, m.port) for m in sdp.media]


def test_caller_offers() -> None:
    sdp = SdpVersions(session_id=9)
    assert kinds(caller_offer(T38Mode.PREFER, OURS, sdp)) == [("audio", 30000)]
    assert kinds(caller_offer(T38Mode.NEVER, OURS, sdp)) == [("audio", 30000)]
    image = caller_offer(T38Mode.ONLY, OURS, sdp)
    assert kinds(image) == [("image", 30002)]
    options = image.media[0].t38
    assert options.udp_ec == "t38UDPRedundancy" and options.max_datagram == 400
    assert options.max_buffer == 1800 and options.rate_management == "transferredTCF"
    assert image.origin.session_version == "3" and image.origin.session_id == "9"
    assert kinds(t38_offer(OURS, sdp)) == [("image", 30002)]


@pytest.mark.parametrize(
    ("mode", "audio", "t38", "expected"),
    [
        (T38Mode.PREFER, True, False, "audio"),
        (T38Mode.PREFER, True, True, "audio"),  # then our re-INVITE moves it to T.38
        (T38Mode.PREFER, False, True, "image"),
        (T38Mode.NEVER, True, True, "audio"),
        (T38Mode.ONLY, True, True, "image"),
        (T38Mode.ONLY, True, False, "audio"),  # then our re-INVITE, or we hang up
        (T38Mode.NEVER, False, True, None),
    ],
)
def test_initial_answer(mode: T38Mode, audio: bool, t38: bool, expected: str | None) -> None:
    incoming = offer(audio, t38)
    if expected is None:
        with pytest.raises(NotAcceptable):
            answer_initial(incoming, mode, OURS, SdpVersions(7))
        return
    answer, stream = answer_initial(incoming, mode, OURS, SdpVersions(7))
    assert stream.kind == expected
    assert len(answer.media) == len(incoming.media)
    accepted = [m.media for m in answer.media if m.port != 0]
    assert accepted == [expected]
    assert stream.remote_port == (40000 if expected == "audio" else 40002)


@pytest.mark.parametrize(
    ("mode", "current", "may_switch", "audio", "t38", "expected"),
    [
        (T38Mode.PREFER, "audio", True, False, True, "image"),
        (T38Mode.ONLY, "audio", True, False, True, "image"),
        (T38Mode.NEVER, "audio", True, False, True, None),  # 488
        (T38Mode.PREFER, "audio", False, False, True, None),  # a page already went on audio
        (T38Mode.PREFER, "audio", True, True, False, "audio"),  # a refresh
        (T38Mode.PREFER, "t38", True, False, True, "image"),  # a new UDPTL port
        (T38Mode.PREFER, "t38", True, True, False, None),  # no going back mid-fax
    ],
)
def test_reinvite_answer(
    mode: T38Mode, current: str, may_switch: bool, audio: bool, t38: bool, expected: str | None
) -> None:
    answered = answer_reinvite(
        offer(audio, t38),
        mode,
        current=current,
        may_switch=may_switch,
        local=OURS,
        sdp=SdpVersions(7),
    )
    if expected is None:
        assert answered is None
    else:
        assert answered is not None and answered[1].kind == expected
