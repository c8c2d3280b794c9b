"""Fax calls between two user agents on 127.0.0.1, over real UDP sockets.

The call flows themselves are tested on a virtual network (test_flows.py); these tests run
the asyncio shell: sockets, the media clock, the user agent's socket. Both ends are faxline
endpoints in this process, so the media clock ticks 20 times faster than real time
(``MediaClock(tick_s=0.001)``, shared by both ends); tests/interop runs calls in real time.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest

from faxline.fax import FaxJob
from faxline.sip.negotiation import Capabilities, LocalMedia, answer_offer
from faxline.sip.ua import CallEnded, IncomingCall, UserAgent
from faxline.telephony import MediaClock, SipFaxResult, T38Mode, receive_fax, send_fax
from tests.fax.faxpages import Page, assert_pages_equal

T = TypeVar("T")


def run(test: Callable[[UserAgent, UserAgent], Awaitable[T]], limit: float = 30) -> T:
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
    """Sends malformed datagrams at a media port on every tick of a clock, until stopped."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setblocking(False)
        self.sent = 0
        self.task: asyncio.Task[None] | None = None

    def start(self, port: int, every: asyncio.Event) -> None:
        async def spray() -> None:
            while True:
                await every.wait()
                every.clear()
                for data in GARBAGE:
                    self.sock.sendto(data, ("127.0.0.1", port))
                    self.sent += 1

        self.task = asyncio.get_running_loop().create_task(spray())

    def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
        self.sock.close()


class Beat:
    """An event set every ``interval`` seconds of the loop's clock (the sprayer's pace)."""

    def __init__(self, interval: float) -> None:
        self.event = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._interval = interval
        self._handle = self._loop.call_later(interval, self._beat)

    def _beat(self) -> None:
        self.event.set()
        self._handle = self._loop.call_later(self._interval, self._beat)

    def stop(self) -> None:
        self._handle.cancel()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("sender", "transport", "spray"),
    [
        (T38Mode.PREFER, "t38", None),  # the answerer's T.38 re-INVITE, accepted
        (T38Mode.ONLY, "t38", "image"),  # an image stream alone; garbage on its UDPTL port
        (T38Mode.NEVER, "audio", "audio"),  # the re-INVITE refused (488); garbage on RTP
    ],
)
def test_fax_over_real_sockets(
    one_page: list[Page],
    one_page_tiff: Path,
    tmp_path: Path,
    sender: T38Mode,
    transport: str,
    spray: str | None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    received = tmp_path / "in.tif"
    clock = MediaClock(tick_s=0.001)
    caplog.set_level(logging.INFO, logger="faxline.telephony.clock")
    sprayer = Sprayer()

    async def scenario(alice: UserAgent, bob: UserAgent) -> tuple[SipFaxResult, SipFaxResult]:
        beat = Beat(0.01)

        async def answer() -> SipFaxResult:
            incoming = await bob.incoming.get()
            assert incoming.offer is not None
            media = [m.media for m in incoming.offer.media]
            assert media == (["image"] if sender is T38Mode.ONLY else ["audio"])
            if spray is not None:
                sprayer.start(incoming.offer.media[0].port, beat.event)
            job = FaxJob.receive(received)
            return await receive_fax(incoming, job, clock=clock, media_timeout_s=10)

        try:
            answering = asyncio.create_task(answer())
            sent = await send_fax(
                alice,
                uri_of(bob),
                FaxJob.send(one_page_tiff, ident="+15550100"),
                t38=sender,
                caller_id="4711",
                clock=clock,
                media_timeout_s=10,
            )
            return sent, await answering
        finally:
            beat.stop()
            sprayer.stop()

    sent, got = run(scenario)
    for result in (sent, got):
        assert result.fax is not None and result.fax.success and result.fax.pages == 1, result
        assert result.transport == transport and result.sip_status == 200
        assert result.ended == "completed" and result.delivered
    assert got.fax is not None and got.fax.remote_ident == "+15550100"
    assert_pages_equal(received, one_page)
    assert spray is None or sprayer.sent > 100
    assert clock.calls == 0  # both calls left the clock
    # Idle again, the clock logged how evenly it sent the ticks (bench/sip reads it).
    spacing = [r.getMessage() for r in caplog.records if "packet intervals" in r.getMessage()]
    assert spacing and int(spacing[-1].split()[2]) > 100, spacing
    assert clock.spacing.total == 0  # and starts afresh for the next busy stretch


def test_cancelled_sender_hangs_up(one_page_tiff: Path) -> None:
    """The task running ``send_fax`` is cancelled mid-call: BYE goes out at once."""

    async def scenario(alice: UserAgent, bob: UserAgent) -> CallEnded:
        loop = asyncio.get_running_loop()
        media = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # the far end's RTP
        media.bind(("127.0.0.1", 0))
        media.setblocking(False)
        try:
            sending = asyncio.create_task(
                send_fax(alice, uri_of(bob), FaxJob.send(one_page_tiff), t38=T38Mode.NEVER)
            )
            incoming: IncomingCall = await bob.incoming.get()
            assert incoming.offer is not None
            ours = LocalMedia("127.0.0.1", media.getsockname()[1], 9)
            caps = Capabilities(t38=None)
            call = incoming.accept(
                answer_offer(incoming.offer, caps, ours, session_id=1, version=1)
            )
            await loop.sock_recv(media, 2048)  # the sender's fax audio: its flow runs
            sending.cancel()
            with pytest.raises(asyncio.CancelledError):
                await sending
            event = await asyncio.wait_for(call.events.get(), 5)
            assert isinstance(event, CallEnded)
            return event
        finally:
            media.close()

    assert run(scenario).reason == "bye"


def test_unreachable_next_hop_is_503(one_page_tiff: Path) -> None:
    async def scenario(alice: UserAgent, bob: UserAgent) -> SipFaxResult:
        return await send_fax(alice, "sip:fax@no-such-host.invalid", FaxJob.send(one_page_tiff))

    result = run(scenario)
    assert (result.sip_status, result.ended, result.fax) == (503, "rejected", None)
