"""Fax calls between two user agents on 127.0.0.1, over real UDP sockets.

Both ends are faxline endpoints in this process, so most tests run their media 4 times
(3-page calls: 8 times) faster than real time (``MediaOptions(tick_s=...)``, both ends
alike); one test runs a call in real time.
"""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest

from faxline.fax import FaxJob
from faxline.sip.call import IncomingCall
from faxline.sip.dialog import Dialog
from faxline.sip.headers import Headers, Via
from faxline.sip.message import SipRequest, parse_response
from faxline.sip.negotiation import Capabilities, LocalMedia, answer_offer
from faxline.sip.sdp import SessionDescription
from faxline.sip.ua import UserAgent
from faxline.sip.uri import SipUri
from faxline.telephony import MediaOptions, SipFaxResult, T38Mode, receive_fax, send_fax
from tests.fax.faxpages import Page, assert_pages_equal

FAST = MediaOptions(tick_s=0.005)
FASTER = MediaOptions(tick_s=0.0025)
T = TypeVar("T")


def run(test: Callable[[UserAgent, UserAgent], Awaitable[T]], limit: float) -> T:
    """Run ``test(alice, bob)`` with two fresh user agents, within ``limit`` seconds."""

    async def main() -> T:
        alice = await UserAgent.listen("127.0.0.1", 0, user="alice")
        bob = await UserAgent.listen("127.0.0.1", 0, user="bob")
        try:
            return await asyncio.wait_for(test(alice, bob), limit)
        finally:
            alice.close()
            bob.close()

    return asyncio.run(main())


def uri_of(ua: UserAgent) -> str:
    host, port = ua.address
    return f"sip:{ua.user}@{host}:{port}"


async def fax_call(
    alice: UserAgent,
    bob: UserAgent,
    document: Path,
    received: Path,
    *,
    sender: T38Mode,
    receiver: T38Mode,
    media: MediaOptions | None = FAST,
    on_incoming: Callable[[IncomingCall], Awaitable[None]] | None = None,
) -> tuple[SipFaxResult, SipFaxResult]:
    """Alice sends ``document`` to Bob, who receives it into ``received``."""

    async def answer() -> SipFaxResult:
        incoming = await bob.incoming.get()
        if on_incoming is not None:
            await on_incoming(incoming)
        return await receive_fax(
            incoming, FaxJob.receive(received), t38=receiver, media=media, media_timeout_s=10
        )

    answering = asyncio.create_task(answer())
    sent = await send_fax(
        alice,
        uri_of(bob),
        FaxJob.send(document, ident="+15550100"),
        t38=sender,
        caller_id="4711",
        media=media,
        media_timeout_s=10,
    )
    return sent, await answering


def assert_delivered(sent: SipFaxResult, got: SipFaxResult, transport: str, pages: int) -> None:
    for result in (sent, got):
        assert result.fax is not None, result
        assert result.fax.success and result.fax.pages == pages, result
        assert result.transport == transport and result.sip_status == 200
        assert result.ended == "completed" and result.delivered
    assert got.fax is not None and got.fax.remote_ident == "+15550100"


@pytest.mark.slow
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
    received = tmp_path / "in.tif"
    sent, got = run(
        lambda a, b: fax_call(
            a,
            b,
            three_page_tiff,
            received,
            sender=T38Mode.PREFER,
            receiver=receiver,
            media=FASTER,
        ),
        60,
    )
    assert_delivered(sent, got, transport, 3)
    assert_pages_equal(received, three_pages)


@pytest.mark.slow
def test_one_page_over_t38_in_real_time(
    one_page: list[Page], one_page_tiff: Path, tmp_path: Path
) -> None:
    received = tmp_path / "in.tif"
    sent, got = run(
        lambda a, b: fax_call(
            a,
            b,
            one_page_tiff,
            received,
            sender=T38Mode.PREFER,
            receiver=T38Mode.PREFER,
            media=None,
        ),
        60,
    )
    assert_delivered(sent, got, "t38", 1)
    assert_pages_equal(received, one_page)


GARBAGE = [
    b"",
    b"\x00",
    b"\x80\x00\x01",  # an RTP header cut short
    b"\x40" + bytes(11) + b"\xff" * 160,  # RTP version 1
    b"\x80\xc8" + bytes(30),  # RTCP sender report on the RTP port
    b"\xa0\x00\x00\x01" + bytes(8) + b"\xff",  # padding longer than the packet
    b"\x00\x07\x05ab",  # UDPTL with a primary IFP cut short
    b"\x00\x07\x01\x80\x07",  # UDPTL with a bad error-recovery choice
    b"\x00\x07\x01\x80\x00\x02\x01",  # UDPTL redundancy cut short
    b"\x00\x07\x00\x00\x00",  # UDPTL with an empty primary IFP
    *(random.Random(seed).randbytes(size) for seed, size in enumerate((12, 20, 172, 1400))),
]


class Sprayer:
    """Sends malformed datagrams at a media port every 20 ms until stopped."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setblocking(False)
        self.sent = 0
        self.task: asyncio.Task[None] | None = None

    def start(self, port: int) -> None:
        async def spray() -> None:
            while True:
                for data in GARBAGE:
                    self.sock.sendto(data, ("127.0.0.1", port))
                    self.sent += 1
                await asyncio.sleep(0.02)

        self.task = asyncio.get_running_loop().create_task(spray())

    def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
        self.sock.close()


@pytest.mark.slow
def test_t38_only_caller_and_malformed_udptl(
    one_page: list[Page], one_page_tiff: Path, tmp_path: Path
) -> None:
    """The caller offers an image stream alone; garbage at its UDPTL port changes nothing."""
    received = tmp_path / "in.tif"
    offers: list[list[str]] = []
    sprayer = Sprayer()

    async def look(incoming: IncomingCall) -> None:
        assert incoming.offer is not None
        offers.append([m.media for m in incoming.offer.media])
        sprayer.start(incoming.offer.media[0].port)

    async def scenario(a: UserAgent, b: UserAgent) -> tuple[SipFaxResult, SipFaxResult]:
        try:
            return await fax_call(
                a,
                b,
                one_page_tiff,
                received,
                sender=T38Mode.ONLY,
                receiver=T38Mode.PREFER,
                on_incoming=look,
            )
        finally:
            sprayer.stop()

    sent, got = run(scenario, 40)
    assert offers == [["image"]] and sprayer.sent > 100
    assert_delivered(sent, got, "t38", 1)
    assert_pages_equal(received, one_page)


@pytest.mark.slow
def test_refused_t38_reinvite_stays_on_g711_despite_malformed_rtp(
    one_page: list[Page], one_page_tiff: Path, tmp_path: Path
) -> None:
    """The answerer offers T.38, the caller (never) answers 488: the fax runs on G.711."""
    received = tmp_path / "in.tif"
    sprayer = Sprayer()

    async def look(incoming: IncomingCall) -> None:
        assert incoming.offer is not None
        sprayer.start(incoming.offer.media[0].port)

    async def scenario(a: UserAgent, b: UserAgent) -> tuple[SipFaxResult, SipFaxResult]:
        try:
            return await fax_call(
                a,
                b,
                one_page_tiff,
                received,
                sender=T38Mode.NEVER,
                receiver=T38Mode.PREFER,
                on_incoming=look,
            )
        finally:
            sprayer.stop()

    sent, got = run(scenario, 40)
    assert sprayer.sent > 100
    assert_delivered(sent, got, "audio", 1)
    assert_pages_equal(received, one_page)


@pytest.mark.parametrize(
    ("mode", "media", "transport"),
    [
        (T38Mode.NEVER, FAST, "audio"),
        # A T.38 far end is quiet between T.30 messages (up to T2, 6 s): the 2 s timeout
        # is 8 s of the call's time at 4 times the speed.
        (T38Mode.PREFER, FAST, "t38"),
    ],
)
def test_far_end_that_vanishes_ends_in_media_timeout(
    one_page_tiff: Path,
    tmp_path: Path,
    mode: T38Mode,
    media: MediaOptions | None,
    transport: str,
) -> None:
    """The receiver's host dies (no BYE, no media): the sender gives up after 2 s."""

    async def scenario(alice: UserAgent, bob: UserAgent) -> tuple[SipFaxResult, float]:
        async def answer() -> SipFaxResult:
            incoming = await bob.incoming.get()
            return await receive_fax(
                incoming, FaxJob.receive(tmp_path / "in.tif"), t38=mode, media=media
            )

        answering = asyncio.create_task(answer())
        sending = asyncio.create_task(
            send_fax(
                alice,
                uri_of(bob),
                FaxJob.send(one_page_tiff),
                t38=mode,
                media=media,
                media_timeout_s=2.0,
            )
        )
        await asyncio.sleep(1.0)  # the call is up and the fax under way
        assert not answering.done() and not sending.done()
        loop = asyncio.get_running_loop()
        bob.close()  # no BYE can leave now
        answering.cancel()  # and its media stops
        vanished = loop.time()
        result = await sending
        return result, loop.time() - vanished

    result, waited = run(scenario, 20)
    assert result.ended == "media_timeout" and result.sip_status == 200
    assert result.transport == transport
    assert result.fax is not None and not result.fax.success
    assert 2.0 <= waited < 5.0


def test_busy(one_page_tiff: Path) -> None:
    async def scenario(alice: UserAgent, bob: UserAgent) -> SipFaxResult:
        async def refuse() -> None:
            (await bob.incoming.get()).reject(486)

        refusing = asyncio.create_task(refuse())
        result = await send_fax(alice, uri_of(bob), FaxJob.send(one_page_tiff))
        await refusing
        return result

    result = run(scenario, 10)
    assert result == SipFaxResult(None, None, 486, "Busy Here", "rejected")


def test_no_answer_is_cancelled(one_page_tiff: Path) -> None:
    async def scenario(alice: UserAgent, bob: UserAgent) -> tuple[SipFaxResult, bool]:
        async def ring() -> IncomingCall:
            incoming = await bob.incoming.get()
            incoming.ringing()
            return incoming

        ringing = asyncio.create_task(ring())
        result = await send_fax(
            alice, uri_of(bob), FaxJob.send(one_page_tiff), answer_timeout_s=0.5
        )
        incoming = await ringing
        return result, incoming.cancelled.is_set()

    result, cancelled = run(scenario, 10)
    assert cancelled  # the far end saw our CANCEL
    assert result.sip_status == 408 and result.ended == "no_answer" and result.fax is None


def test_unusable_offer_is_answered_488(one_page_tiff: Path, tmp_path: Path) -> None:
    """A T.38-only offer to a receiver that never does T.38."""

    async def scenario(alice: UserAgent, bob: UserAgent) -> tuple[SipFaxResult, SipFaxResult]:
        async def answer() -> SipFaxResult:
            incoming = await bob.incoming.get()
            return await receive_fax(
                incoming, FaxJob.receive(tmp_path / "in.tif"), t38=T38Mode.NEVER
            )

        answering = asyncio.create_task(answer())
        sent = await send_fax(alice, uri_of(bob), FaxJob.send(one_page_tiff), t38=T38Mode.ONLY)
        return sent, await answering

    sent, got = run(scenario, 10)
    assert sent.sip_status == 488 and sent.ended == "t38_refused" and sent.fax is None
    assert got.sip_status == 488 and got.ended == "rejected"


def test_bye_from_the_far_end_hangs_the_session_up(one_page_tiff: Path, tmp_path: Path) -> None:
    """The sender gives up mid-call (its task is cancelled: it sends BYE)."""

    async def scenario(alice: UserAgent, bob: UserAgent) -> SipFaxResult:
        async def answer() -> SipFaxResult:
            incoming = await bob.incoming.get()
            return await receive_fax(incoming, FaxJob.receive(tmp_path / "in.tif"), media=FAST)

        answering = asyncio.create_task(answer())
        sending = asyncio.create_task(
            send_fax(alice, uri_of(bob), FaxJob.send(one_page_tiff), media=FAST)
        )
        await asyncio.sleep(1.0)
        sending.cancel()
        with pytest.raises(asyncio.CancelledError):
            await sending
        return await answering

    got = run(scenario, 10)
    assert got.ended == "remote_bye" and got.sip_status == 200
    assert got.fax is not None and not got.fax.success and got.fax.pages == 0


def test_late_offer_gets_our_offer_and_the_ack_answer(tmp_path: Path) -> None:
    """An INVITE without SDP: the 200 carries our audio offer, the ACK the answer."""

    async def scenario(alice: UserAgent, bob: UserAgent) -> tuple[SipFaxResult, list[str]]:
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
        media = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # a mute far end
        media.bind(("127.0.0.1", 0))
        host, port = sock.getsockname()
        try:
            headers = Headers()
            headers.add("Via", f"SIP/2.0/UDP {host}:{port};branch=z9hG4bK-late")
            headers.add("From", f"<sip:late@{host}:{port}>;tag=l1")
            headers.add("To", f"<{uri_of(bob)}>")
            headers.add("Call-ID", "late-offer-1")
            headers.add("CSeq", "1 INVITE")
            headers.add("Contact", f"<sip:late@{host}:{port}>")
            invite = SipRequest("INVITE", SipUri.parse(uri_of(bob)), headers)
            answering = asyncio.create_task(
                receive_fax(
                    await _send_and_take(loop, sock, invite, bob),
                    FaxJob.receive(tmp_path / "in.tif"),
                    media=FAST,
                    media_timeout_s=1.0,
                )
            )
            statuses: list[str] = []
            while True:
                data = await asyncio.wait_for(loop.sock_recv(sock, 65535), 5)
                response = parse_response(data)
                statuses.append(str(response.status))
                if response.status >= 200:
                    break
            offer = SessionDescription.parse(response.body)
            statuses.extend(m.media for m in offer.media)
            ours = LocalMedia("127.0.0.1", media.getsockname()[1], 9)
            answer = answer_offer(offer, Capabilities(), ours, session_id=1, version=1)
            via = Via(host, port, params={"branch": "z9hG4bK-late-ack"})
            ack = Dialog.as_uac(invite, response).create_ack(invite, via, body=bytes(answer))
            await loop.sock_sendto(sock, bytes(ack), bob.address)
            return await answering, statuses
        finally:
            sock.close()
            media.close()

    result, statuses = run(scenario, 10)
    assert statuses[-2:] == ["200", "audio"]
    assert result.transport == "audio" and result.sip_status == 200
    assert result.ended == "media_timeout"  # the far end never sent any media


async def _send_and_take(
    loop: asyncio.AbstractEventLoop, sock: socket.socket, invite: SipRequest, bob: UserAgent
) -> IncomingCall:
    await loop.sock_sendto(sock, bytes(invite), bob.address)
    incoming = await asyncio.wait_for(bob.incoming.get(), 5)
    assert incoming.offer is None
    return incoming


def test_maximum_duration_ends_the_call(one_page_tiff: Path, tmp_path: Path) -> None:
    async def scenario(alice: UserAgent, bob: UserAgent) -> tuple[SipFaxResult, SipFaxResult]:
        async def answer() -> SipFaxResult:
            incoming = await bob.incoming.get()
            return await receive_fax(incoming, FaxJob.receive(tmp_path / "in.tif"), media=FAST)

        answering = asyncio.create_task(answer())
        sent = await send_fax(
            alice, uri_of(bob), FaxJob.send(one_page_tiff), media=FAST, max_duration_s=1.0
        )
        return sent, await answering

    sent, got = run(scenario, 10)
    assert sent.ended == "max_duration" and sent.sip_status == 200
    assert sent.fax is not None and not sent.fax.success
    assert got.ended == "remote_bye" and got.fax is not None and not got.fax.success
