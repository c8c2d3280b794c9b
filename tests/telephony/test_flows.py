"""Fax call flows between two faxline endpoints on a virtual network (see callsim.py).

Real SpanDSP sessions send real pages; SIP and media are datagrams between sans-I/O cores,
and time is the network's: a minute-long call costs the CPU it takes, and a lost datagram
is lost because the test said so. Pages are compared pixel for pixel.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from faxline.fax import FaxJob
from faxline.sip.events import CallCancelled, NewCall
from faxline.sip.headers import Headers
from faxline.sip.message import SipRequest, parse_message, parse_response
from faxline.sip.negotiation import Capabilities, LocalMedia, answer_offer, make_offer
from faxline.sip.sdp import SessionDescription
from faxline.telephony.flow import BYE_WAIT_S, RECEIVER_CLEARING_S, FaxCallFlow
from faxline.telephony.results import Ending, SipFaxResult, T38Mode
from faxline.telephony.streams import T38_QUIET_FLOOR_S
from faxline.testing.network import ScriptedPeer, Sent, VirtualNetwork
from tests.fax.faxpages import Page, assert_pages_equal
from tests.telephony.callsim import Endpoint


class World:
    def __init__(self) -> None:
        self.net = VirtualNetwork()
        self.alice = Endpoint(self.net, "10.0.0.1", seed=1, user="alice")
        self.bob = Endpoint(self.net, "10.0.0.2", seed=2, user="bob")

    def incoming(self) -> list[object]:
        self.net.run(lambda: any(isinstance(e, NewCall) for e in self.bob.unclaimed))
        return list(self.bob.new_calls())

    def fax(
        self,
        document: Path,
        received: Path,
        *,
        sender: T38Mode = T38Mode.PREFER,
        receiver: T38Mode = T38Mode.PREFER,
        timeout: float = 300,
        **kw: float,
    ) -> tuple[FaxCallFlow, FaxCallFlow]:
        sending = self.alice.send(FaxJob.send(document, ident="+15550100"), self.bob, sender, **kw)
        (incoming,) = self.incoming()
        receiving = self.bob.answer(
            incoming,
            FaxJob.receive(received),
            receiver,  # type: ignore[arg-type]
        )
        self.net.run(lambda: sending.finished and receiving.finished, timeout=timeout)
        return sending, receiving

    def sip(self, source: Endpoint, destination: Endpoint) -> list[str]:
        """The SIP messages ``source`` sent ``destination``: methods and statuses."""
        out = []
        for sent in self.net.sent(source.sip_address, destination.sip_address):
            message = parse_message(sent.data)
            out.append(message.method if isinstance(message, SipRequest) else str(message.status))
        return out


def delivered(flow: FaxCallFlow, transport: str, pages: int) -> SipFaxResult:
    result = flow.result
    assert result is not None and result.fax is not None, result
    assert result.fax.success and result.fax.pages == pages, result
    assert result.transport == transport and result.sip_status == 200, result
    assert result.ended == "completed" and result.delivered, result
    return result


@pytest.mark.parametrize(
    ("receiver", "transport"), [(T38Mode.PREFER, "t38"), (T38Mode.NEVER, "audio")]
)
def test_three_pages_arrive_identical(
    three_pages: list[Page],
    three_page_tiff: Path,
    tmp_path: Path,
    receiver: T38Mode,
    transport: str,
) -> None:
    w = World()
    received = tmp_path / "in.tif"
    sending, receiving = w.fax(three_page_tiff, received, receiver=receiver)
    delivered(sending, transport, 3)
    got = delivered(receiving, transport, 3)
    assert got.fax is not None and got.fax.remote_ident == "+15550100"
    assert_pages_equal(received, three_pages)
    # The receiver's one re-INVITE to T.38 (on "prefer"); the caller never re-INVITEs.
    assert w.sip(w.bob, w.alice).count("INVITE") == (1 if transport == "t38" else 0)
    assert w.sip(w.alice, w.bob).count("INVITE") == 1
    assert w.alice.ticks > 2500  # about a minute of 20 ms ticks, run in a fraction of that


def test_refused_t38_reinvite_stays_on_g711(
    one_page: list[Page], one_page_tiff: Path, tmp_path: Path
) -> None:
    """The answerer offers T.38, the caller (``never``) answers 488: G.711 to the end."""
    w = World()
    sending, receiving = w.fax(one_page_tiff, tmp_path / "in.tif", sender=T38Mode.NEVER)
    delivered(sending, "audio", 1)
    delivered(receiving, "audio", 1)
    assert_pages_equal(tmp_path / "in.tif", one_page)
    assert "INVITE" in w.sip(w.bob, w.alice) and "488" in w.sip(w.alice, w.bob)


def test_t38_only_caller_offers_an_image_stream_alone(
    one_page: list[Page], one_page_tiff: Path, tmp_path: Path
) -> None:
    w = World()
    sending, receiving = w.fax(one_page_tiff, tmp_path / "in.tif", sender=T38Mode.ONLY)
    delivered(sending, "t38", 1)
    delivered(receiving, "t38", 1)
    assert_pages_equal(tmp_path / "in.tif", one_page)
    invite = parse_message(w.net.sent(w.alice.sip_address, w.bob.sip_address)[0].data)
    assert [m.media for m in SessionDescription.parse(invite.body).media] == ["image"]
    assert "INVITE" not in w.sip(w.bob, w.alice)  # no switch needed


def test_t38_only_answerer_hangs_up_when_refused(one_page_tiff: Path, tmp_path: Path) -> None:
    w = World()
    sending, receiving = w.fax(
        one_page_tiff, tmp_path / "in.tif", sender=T38Mode.NEVER, receiver=T38Mode.ONLY
    )
    assert receiving.result is not None and receiving.result.ended == "t38_refused"
    assert sending.result is not None and sending.result.ended == "remote_bye"
    assert sending.result.fax is not None and not sending.result.fax.success


def test_no_answer_is_cancelled(one_page_tiff: Path) -> None:
    w = World()
    started = w.net.now
    sending = w.alice.send(FaxJob.send(one_page_tiff), w.bob, answer_timeout_s=5)
    (incoming,) = w.incoming()
    w.bob.core.ring(incoming, w.net.now)  # type: ignore[arg-type]
    w.net.run(lambda: sending.finished)
    assert sending.result == SipFaxResult(
        None, None, 408, "no answer (cancelled): Request Terminated", Ending.NO_ANSWER
    )
    assert 5.0 <= w.net.now - started < 5.1
    assert any(isinstance(e, CallCancelled) for e in w.bob.unclaimed)


def test_busy(one_page_tiff: Path) -> None:
    w = World()
    sending = w.alice.send(FaxJob.send(one_page_tiff), w.bob)
    (incoming,) = w.incoming()
    w.bob.core.reject(incoming, 486, w.net.now)  # type: ignore[arg-type]
    w.net.run(lambda: sending.finished)
    assert sending.result == SipFaxResult(None, None, 486, "Busy Here", Ending.REJECTED)


def test_unusable_offer_is_answered_488(one_page_tiff: Path, tmp_path: Path) -> None:
    w = World()
    sending, receiving = w.fax(
        one_page_tiff, tmp_path / "in.tif", sender=T38Mode.ONLY, receiver=T38Mode.NEVER
    )
    assert sending.result is not None and receiving.result is not None
    assert (sending.result.sip_status, sending.result.ended) == (488, "t38_refused")
    assert (receiving.result.sip_status, receiving.result.ended) == (488, "rejected")


def test_bye_during_a_page_hangs_the_receiver_up(one_page_tiff: Path, tmp_path: Path) -> None:
    """The sender gives up while the page is being sent (its task is cancelled)."""
    w = World()
    sending = w.alice.send(FaxJob.send(one_page_tiff), w.bob)
    (incoming,) = w.incoming()
    receiving = w.bob.answer(incoming, FaxJob.receive(tmp_path / "in.tif"))  # type: ignore[arg-type]
    stream = lambda: receiving.media.stream  # noqa: E731
    # Page data is flowing once the receiver gets IFPs by the dozen each second.
    w.net.run(lambda: receiving.media.transport == "t38" and stream().stats.received > 150)
    sending.abort(w.net.now)
    w.net.run(lambda: receiving.finished)
    got = receiving.result
    assert got is not None and got.ended == "remote_bye" and got.sip_status == 200
    assert got.fax is not None and not got.fax.success and got.fax.pages == 0
    assert sending.finished and "BYE" in w.sip(w.alice, w.bob)


@pytest.mark.parametrize(
    ("mode", "limit"), [(T38Mode.NEVER, 2.0), (T38Mode.PREFER, T38_QUIET_FLOOR_S)]
)
def test_far_end_that_vanishes_ends_in_media_timeout(
    one_page_tiff: Path, tmp_path: Path, mode: T38Mode, limit: float
) -> None:
    """The receiver's host dies mid-call (no BYE, no media): the sender gives up.

    Over T.38 the 2 s timeout is raised to the floor: a T.38 far end is quiet between T.30
    messages for up to T2 (6 s).
    """
    w = World()
    sending = w.alice.send(FaxJob.send(one_page_tiff), w.bob, mode, media_timeout_s=2.0)
    (incoming,) = w.incoming()
    receiving = w.bob.answer(incoming, FaxJob.receive(tmp_path / "in.tif"), mode)  # type: ignore[arg-type]
    w.net.advance(3)  # the call is up, T.30 has started (T.38: switched already)
    assert not sending.finished and not receiving.finished
    assert receiving.media.transport == ("audio" if mode is T38Mode.NEVER else "t38")
    w.bob.vanish()
    heard = max(
        s.at for s in w.net.sent(destination=("10.0.0.1", 40000 + (mode is T38Mode.PREFER)))
    )
    w.net.run(lambda: sending.finished)
    result = sending.result
    assert result is not None and result.ended == "media_timeout" and result.sip_status == 200
    assert result.transport == ("audio" if mode is T38Mode.NEVER else "t38")
    assert result.fax is not None and not result.fax.success
    # Quiet for ``limit`` since the last datagram heard, then a BYE nobody answers.
    quiet = w.net.now - BYE_WAIT_S - heard
    assert limit <= quiet < limit + 0.05


def test_maximum_duration_ends_the_call(one_page_tiff: Path, tmp_path: Path) -> None:
    w = World()
    sending, receiving = w.fax(one_page_tiff, tmp_path / "in.tif", max_duration_s=5.0)
    assert sending.result is not None and sending.result.ended == "max_duration"
    assert sending.result.fax is not None and not sending.result.fax.success
    assert receiving.result is not None and receiving.result.ended == "remote_bye"


def test_glare_on_the_t38_reinvite_is_retried_after_a_pause(
    one_page: list[Page], one_page_tiff: Path, tmp_path: Path
) -> None:
    """Both ends re-INVITE at once (the caller here as a gateway would): both get 491,
    and the answerer tries again after a random pause of 0.5-2 s."""
    w = World()
    sending = w.alice.send(FaxJob.send(one_page_tiff), w.bob)
    (incoming,) = w.incoming()
    receiving = w.bob.answer(incoming, FaxJob.receive(tmp_path / "in.tif"))  # type: ignore[arg-type]
    w.net.run(lambda: sending.call is not None)  # answered; our ACK leaves now...
    assert sending.call is not None
    ours = LocalMedia("10.0.0.1", 40000, 40001)
    t38 = make_offer(Capabilities(), ours, session_id=77, version=2, audio=False, t38=True)
    w.alice.core.reinvite(sending.call, t38, w.net.now)  # ... with a re-INVITE of our own
    w.net.run(lambda: sending.finished and receiving.finished, timeout=300)
    delivered(sending, "t38", 1)
    delivered(receiving, "t38", 1)
    assert_pages_equal(tmp_path / "in.tif", one_page)
    glare = [
        s for s in w.net.sent(w.bob.sip_address, w.alice.sip_address) if b" 491 " in s.data[:20]
    ]
    invites = [
        s
        for s in w.net.sent(w.bob.sip_address, w.alice.sip_address)
        if s.data.startswith(b"INVITE")
    ]
    assert len(glare) == 1 and len(invites) == 2
    assert 0.5 <= invites[1].at - invites[0].at <= 2.0 + 0.01


def test_late_offer_gets_our_offer_and_the_ack_answer(tmp_path: Path) -> None:
    """An INVITE without SDP: the 200 carries our audio offer, the ACK the answer."""
    w = World()
    far = ScriptedPeer()
    here = ("10.0.0.9", 5060)
    w.net.attach(here, far)
    headers = Headers()
    headers.add("Via", f"SIP/2.0/UDP {here[0]}:{here[1]};branch=z9hG4bK-late")
    headers.add("From", f"<sip:late@{here[0]}>;tag=l1")
    headers.add("To", "<sip:fax@10.0.0.2>")
    headers.add("Call-ID", "late-offer-1")
    headers.add("CSeq", "1 INVITE")
    headers.add("Contact", f"<sip:late@{here[0]}:{here[1]}>")
    far.send(bytes(SipRequest("INVITE", w.bob.uri, headers)), w.bob.sip_address)
    (incoming,) = w.incoming()
    receiving = w.bob.answer(
        incoming,
        FaxJob.receive(tmp_path / "in.tif"),
        media_timeout_s=1.0,  # type: ignore[arg-type]
    )
    w.net.run(lambda: any(d.startswith(b"SIP/2.0 200") for d, _ in far.received))
    ok = next(parse_response(d) for d, _ in far.received if d.startswith(b"SIP/2.0 200"))
    offer = SessionDescription.parse(ok.body)
    assert [m.media for m in offer.media] == ["audio"]
    mute = LocalMedia("10.0.0.9", 30000, 9)  # a far end that never sends media
    answer = answer_offer(offer, Capabilities(), mute, session_id=1, version=1)
    ack_headers = Headers()
    ack_headers.add("Via", f"SIP/2.0/UDP {here[0]}:{here[1]};branch=z9hG4bK-late-ack")
    ack_headers.add("From", headers.get("From") or "")
    ack_headers.add("To", ok.headers.get("To") or "")
    ack_headers.add("Call-ID", "late-offer-1")
    ack_headers.add("CSeq", "1 ACK")
    ack_headers.add("Content-Type", "application/sdp")
    far.send(
        bytes(SipRequest("ACK", ok.contacts[0].uri, ack_headers, bytes(answer))), w.bob.sip_address
    )
    w.net.run(lambda: receiving.finished)
    result = receiving.result
    assert result is not None and result.transport == "audio" and result.sip_status == 200
    assert result.ended == "media_timeout"  # the far end never sent any media
    assert w.net.sent(destination=("10.0.0.9", 30000))  # but we did, to where the ACK said


def test_an_answer_never_acked_ends_in_no_ack(three_page_tiff: Path, tmp_path: Path) -> None:
    """The caller's ACKs are all lost: 64 T1 (32 s) after our 200, we hang up."""
    w = World()
    w.net.lose = lambda sent: sent.data.startswith(b"ACK ")
    sending, receiving = w.fax(three_page_tiff, tmp_path / "in.tif", receiver=T38Mode.NEVER)
    assert receiving.result is not None and receiving.result.ended == "no_ack"
    assert sending.result is not None and sending.result.ended == "remote_bye"


@pytest.mark.parametrize(
    ("sender", "transport", "loss"),
    # G.711: ECM repairs lost blocks in the page, but a block lost in a V.21 control frame
    # can still fail T.30 in SpanDSP 0.0.6 (see test_streams), hence little loss and a seed.
    [(T38Mode.PREFER, "t38", 0.1), (T38Mode.NEVER, "audio", 0.003)],
)
def test_lossy_media_and_signalling(
    one_page: list[Page],
    one_page_tiff: Path,
    tmp_path: Path,
    sender: T38Mode,
    transport: str,
    loss: float,
) -> None:
    """Media datagrams lost at random both ways, and the first copy of every SIP request
    (INVITE, ACK, re-INVITE, BYE): UDPTL redundancy and ECM repair the media, the
    transactions retransmit the requests (and a lost ACK is repeated on the 2xx's copy)."""
    w = World()
    rng = random.Random(5)
    seen: set[bytes] = set()

    def lose(sent: Sent) -> bool:
        if sent.source[1] == 5060:
            if sent.data.startswith(b"SIP/2.0"):
                return False
            head = sent.data.split(b"\r\n\r\n", 1)[0]
            key = b"|".join(
                line for line in head.split(b"\r\n") if line.startswith((b"Call-ID", b"CSeq"))
            )
            first = key not in seen
            seen.add(key)
            return first
        return rng.random() < loss

    w.net.lose = lose
    sending, receiving = w.fax(one_page_tiff, tmp_path / "in.tif", sender=sender)
    delivered(sending, transport, 1)
    delivered(receiving, transport, 1)
    assert_pages_equal(tmp_path / "in.tif", one_page)
    media_lost = [s for s in w.net.log if s.lost and s.source[1] != 5060]
    sip_lost = [s for s in w.net.log if s.lost and s.source[1] == 5060]
    assert len(media_lost) > (20 if transport == "t38" else 2)
    assert {parse_message(s.data).method for s in sip_lost} >= {"INVITE", "ACK", "BYE"}
    if transport == "t38":
        assert receiving.media.stream is not None
        assert receiving.media.stream.stats.recovered > 0


def test_the_receiver_waits_for_the_senders_bye(one_page_tiff: Path, tmp_path: Path) -> None:
    """After phase E the sender hangs up; the receiver never has to send its own BYE."""
    w = World()
    sending, receiving = w.fax(one_page_tiff, tmp_path / "in.tif")
    delivered(sending, "t38", 1)
    assert w.sip(w.alice, w.bob).count("BYE") == 1
    assert w.sip(w.bob, w.alice).count("BYE") == 0
    assert receiving.result is not None and receiving.result.ended == "completed"
    assert RECEIVER_CLEARING_S > 1.0
