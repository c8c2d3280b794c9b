"""An in-process telephone line: the test double for everything above the telephony layer.

:func:`run_call` connects a sending fax job to a receiving one, over audio (through G.711,
encoded and decoded each way) or over T.38 (IFP packets with sequence numbers), and
returns both sides' results. It runs as fast as the CPU allows while the call's time is
simulated in 20 ms blocks; :func:`run_call_paced` runs the same call in real time on an
asyncio loop. Impairments make lines lossy in a reproducible way (a seeded
:class:`random.Random` or an explicit predicate), drop the call after a given page, or
cap its duration.

Example::

    result = run_call(FaxJob.send("out.tif"), FaxJob.receive("in.tif"), transport=Transport.T38)
    assert result.sender.success and result.receiver.pages == 3

Arguments are plain values, so ``run_call`` can be submitted to a process pool.
"""

from __future__ import annotations

import asyncio
import enum
import random
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from faxline.fax.audio import AudioFaxSession, Samples
from faxline.fax.events import FaxEvent, FaxResult, PageTransferred
from faxline.fax.g711 import Codec, transcoder
from faxline.fax.job import FaxJob
from faxline.fax.session import SAMPLE_RATE, FaxSession
from faxline.fax.t38 import IfpPacket, T38FaxSession

BLOCK_SAMPLES = 160
"""One step of the line: 20 ms at 8 kHz, the usual RTP packet time."""
BLOCK_S = BLOCK_SAMPLES / SAMPLE_RATE
CLEARING_S = 5.0
"""Once one side has ended (sent or received DCN), the line clears the call this much later.

A real far end hangs up after its DCN; without this, a SpanDSP 0.0.6 receiver that misses
the final DCN waits forever (its T4 retry finds "nothing to repeat")."""


class Transport(enum.Enum):
    """How the two sessions are connected."""

    AUDIO = "audio"
    T38 = "t38"


class Side(enum.Enum):
    """The side that sent a block or packet on the line."""

    SENDER = "sender"
    RECEIVER = "receiver"


class Ending(enum.Enum):
    """Why the line stopped."""

    COMPLETED = "completed"
    """Both sessions reached T.30 phase E, the second at most :data:`CLEARING_S` after
    the first (then the line cleared the call, as a far end hangs up after its DCN)."""
    HANGUP_AFTER_PAGE = "hangup_after_page"
    """The line dropped the call after the requested page (an impairment)."""
    MAX_DURATION = "max_duration"
    """The call ran out of time and the line dropped it."""


PacketPredicate = Callable[[Side, IfpPacket], bool]
"""Decides whether a T.38 packet (all its copies) is lost: ``(side that sent it, packet)``."""


@dataclass(frozen=True)
class Impairments:
    """What goes wrong on the line; the default is a perfect line.

    ``lost_audio_blocks`` is the probability that a 20 ms block (each direction) is lost;
    ``lost_packets`` the probability that a T.38 datagram is lost (one datagram per copy
    SpanDSP asks for). Both are drawn from ``random.Random(seed)``, so a run repeats
    exactly. ``drop_packet`` decides T.38 losses explicitly instead (it replaces
    ``lost_packets`` when given). Lost T.38 packets can still be recovered from the
    redundancy of later datagrams, as UDPTL does (see ``udptl_redundancy``).
    ``hangup_after_page`` drops the call as soon as the sender has had that many pages
    confirmed.
    """

    lost_audio_blocks: float = 0.0
    lost_packets: float = 0.0
    seed: int = 0
    hangup_after_page: int | None = None
    drop_packet: PacketPredicate | None = None

    def __post_init__(self) -> None:
        for name in ("lost_audio_blocks", "lost_packets"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be a probability between 0 and 1")
        if self.hangup_after_page is not None and self.hangup_after_page < 1:
            raise ValueError("hangup_after_page counts pages from 1")


@dataclass(frozen=True)
class CallResult:
    """Both sides' final results and what happened on the line."""

    sender: FaxResult
    receiver: FaxResult
    duration_s: float
    transport: Transport
    ending: Ending
    lost_blocks: int = 0
    """Audio blocks lost (both directions), each reported to SpanDSP as a fill-in."""
    lost_packets: int = 0
    """IFP packets whose every datagram was lost (redundancy may have recovered them)."""
    sender_events: tuple[FaxEvent, ...] = field(default=(), repr=False)
    receiver_events: tuple[FaxEvent, ...] = field(default=(), repr=False)


class Call:
    """Two live sessions connected back to back; :meth:`step` moves the call on 20 ms.

    Use :func:`run_call` unless you need to act between steps (tests do, to provoke
    garbage collection mid-call). The sessions stay owned by the caller.
    ``udptl_redundancy`` is how many earlier IFP packets each T.38 datagram repeats
    (UDPTL redundancy, as the SIP layer sends it); 0 models bare IFP packets.
    """

    def __init__(
        self,
        sender: FaxSession,
        receiver: FaxSession,
        *,
        codec: Codec = Codec.PCMU,
        impairments: Impairments | None = None,
        max_duration_s: float = 600.0,
        udptl_redundancy: int = 3,
    ) -> None:
        if udptl_redundancy < 0:
            raise ValueError("udptl_redundancy cannot be negative")
        self._carry: Callable[[], None]
        if isinstance(sender, AudioFaxSession) and isinstance(receiver, AudioFaxSession):
            self.transport = Transport.AUDIO
            self._audio_pair = (sender, receiver)
            self._carry = self._step_audio
        elif isinstance(sender, T38FaxSession) and isinstance(receiver, T38FaxSession):
            self.transport = Transport.T38
            self._t38_pair = (sender, receiver)
            self._carry = self._step_t38
        else:
            raise TypeError("both sessions must be audio sessions or both T.38 sessions")
        self.sender = sender
        self.receiver = receiver
        self.codec = codec
        self._through = transcoder(codec)  # G.711 encode + decode
        self.impairments = impairments or Impairments()
        self.max_blocks = round(max_duration_s / BLOCK_S)
        self._clearing_blocks = round(CLEARING_S / BLOCK_S)
        self._first_end: int | None = None
        self.blocks = 0
        self.lost_blocks = 0
        self.lost_packets = 0
        self.ending: Ending | None = None
        self._rng = random.Random(self.impairments.seed)
        self._events: dict[Side, list[FaxEvent]] = {Side.SENDER: [], Side.RECEIVER: []}
        self._sender_pages = 0
        self.udptl_redundancy = udptl_redundancy
        self._sent: dict[Side, int] = {Side.SENDER: 0, Side.RECEIVER: 0}
        self._missing: dict[Side, dict[int, tuple[int, IfpPacket]]] = {
            Side.SENDER: {},
            Side.RECEIVER: {},
        }

    @property
    def duration_s(self) -> float:
        """Simulated time on the line so far."""
        return self.blocks * BLOCK_S

    def step(self) -> bool:
        """Carry 20 ms each way; return False once the call is over."""
        if self.ending is not None:
            return False
        self._carry()
        self.blocks += 1
        sender, receiver = self.sender, self.receiver
        self._collect_events()
        if sender.finished or receiver.finished:
            if sender.finished and receiver.finished:
                self.ending = Ending.COMPLETED
                return False
            if self._first_end is None:
                self._first_end = self.blocks
            elif self.blocks - self._first_end >= self._clearing_blocks:
                self._drop(Ending.COMPLETED)
                return False
        hangup_page = self.impairments.hangup_after_page
        if hangup_page is not None and self._sender_pages >= hangup_page and not sender.finished:
            self._drop(Ending.HANGUP_AFTER_PAGE)
        elif self.blocks >= self.max_blocks:
            self._drop(Ending.MAX_DURATION)
        return self.ending is None

    def run(self) -> CallResult:
        """Step until the call is over and return its result."""
        while self.step():
            pass
        return self.result()

    def result(self) -> CallResult:
        """The call's result; only valid once :meth:`step` returned False."""
        if self.ending is None:
            raise RuntimeError("the call is still in progress")
        sender, receiver = self.sender.result, self.receiver.result
        assert sender is not None and receiver is not None
        return CallResult(
            sender=sender,
            receiver=receiver,
            duration_s=self.duration_s,
            transport=self.transport,
            ending=self.ending,
            lost_blocks=self.lost_blocks,
            lost_packets=self.lost_packets,
            sender_events=tuple(self._events[Side.SENDER]),
            receiver_events=tuple(self._events[Side.RECEIVER]),
        )

    def _drop(self, ending: Ending) -> None:
        self.ending = ending
        self.sender.hangup()
        self.receiver.hangup()
        self._collect_events()

    def _collect_events(self) -> None:
        sender, receiver = self.sender, self.receiver
        while (event := sender.next_event()) is not None:
            self._events[Side.SENDER].append(event)
            if isinstance(event, PageTransferred):
                self._sender_pages = event.page
        while (event := receiver.next_event()) is not None:
            self._events[Side.RECEIVER].append(event)

    def _step_audio(self) -> None:
        sender, receiver = self._audio_pair
        forward = _transmit(sender)
        backward = _transmit(receiver)
        if self.impairments.lost_audio_blocks == 0.0:
            # The common, lossless case without the per-block bookkeeping.
            if not receiver.closed:
                receiver.receive_audio(self._through(forward))
            if not sender.closed:
                sender.receive_audio(self._through(backward))
            return
        self._carry_audio(forward, receiver)
        self._carry_audio(backward, sender)

    def _carry_audio(self, block: Samples, to: AudioFaxSession) -> None:
        # Drawn even for a closed receiver, so the loss pattern depends on the seed only.
        lost = self._rng.random() < self.impairments.lost_audio_blocks
        if to.closed:
            return  # its owner closed it (say, from an event hook): the far end is gone
        if lost:
            self.lost_blocks += 1
            to.receive_lost(len(block))
        else:
            to.receive_audio(self._through(block))

    def _step_t38(self) -> None:
        sender, receiver = self._t38_pair
        if not sender.closed:
            sender.advance(BLOCK_SAMPLES)
        if not receiver.closed:
            receiver.advance(BLOCK_SAMPLES)
        for packet in sender.packets_to_send():
            self._carry_packet(Side.SENDER, packet, receiver)
        for packet in receiver.packets_to_send():
            self._carry_packet(Side.RECEIVER, packet, sender)

    def _carry_packet(self, side: Side, packet: IfpPacket, to: T38FaxSession) -> None:
        # Each copy SpanDSP asked for is one UDPTL datagram carrying this packet and the
        # previous `udptl_redundancy` ones, so a datagram that arrives also recovers the
        # recent packets that were lost. `missing` maps their sequence numbers to them.
        predicate = self.impairments.drop_packet
        rate = self.impairments.lost_packets
        if predicate is None and rate == 0.0:
            # A perfect line: every copy arrives, nothing is ever missing.
            if not to.closed:
                for _ in range(packet.copies):
                    to.receive_packet(packet)
            return
        missing = self._missing[side]
        index = self._sent[side] = self._sent[side] + 1
        arrived = False
        for _ in range(packet.copies):
            if predicate is not None:
                lost = predicate(side, packet)
            else:
                lost = rate > 0.0 and self._rng.random() < rate
            if lost or to.closed:
                continue
            arrived = True
            if missing:
                for seq, (sent_at, carried) in sorted(missing.items(), key=lambda kv: kv[1][0]):
                    if index - sent_at <= self.udptl_redundancy:
                        to.receive_packet(carried)
                    del missing[seq]
            # Repeats are fine: SpanDSP recognises them by sequence number.
            to.receive_packet(packet)
        if not arrived:
            self.lost_packets += 1
            missing[packet.seq] = (index, packet)


def _transmit(session: AudioFaxSession) -> Samples:
    if session.closed:
        return np.zeros(BLOCK_SAMPLES, dtype=np.int16)
    return session.transmit_audio(BLOCK_SAMPLES)


def _sessions(
    sender: FaxJob, receiver: FaxJob, transport: Transport
) -> tuple[FaxSession, FaxSession]:
    kind: type[FaxSession] = AudioFaxSession if transport is Transport.AUDIO else T38FaxSession
    tx = kind(sender, calling=True)
    try:
        rx = kind(receiver, calling=False)
    except BaseException:
        tx.close()
        raise
    return tx, rx


def run_call(
    sender: FaxJob,
    receiver: FaxJob,
    *,
    transport: Transport = Transport.AUDIO,
    codec: Codec = Codec.PCMU,
    impairments: Impairments | None = None,
    max_duration_s: float = 600.0,
    udptl_redundancy: int = 3,
) -> CallResult:
    """Run a whole call between ``sender`` (calling) and ``receiver`` (answering), unpaced.

    Raises :class:`~faxline.fax.errors.FaxDocumentError` before the call if the
    sender's TIFF is not a valid fax document.
    """
    tx, rx = _sessions(sender, receiver, transport)
    with tx, rx:
        call = Call(
            tx,
            rx,
            codec=codec,
            impairments=impairments,
            max_duration_s=max_duration_s,
            udptl_redundancy=udptl_redundancy,
        )
        return call.run()


async def run_call_paced(
    sender: FaxJob,
    receiver: FaxJob,
    *,
    transport: Transport = Transport.AUDIO,
    codec: Codec = Codec.PCMU,
    impairments: Impairments | None = None,
    max_duration_s: float = 600.0,
    udptl_redundancy: int = 3,
) -> CallResult:
    """Like :func:`run_call`, but in real time: one 20 ms block per 20 ms of wall clock.

    Deadlines are taken from the event loop's clock, so slow steps do not make the call
    drift; the loop stays free for other work between blocks.
    """
    loop = asyncio.get_running_loop()
    tx, rx = _sessions(sender, receiver, transport)
    with tx, rx:
        call = Call(
            tx,
            rx,
            codec=codec,
            impairments=impairments,
            max_duration_s=max_duration_s,
            udptl_redundancy=udptl_redundancy,
        )
        start = loop.time()
        while call.step():
            await asyncio.sleep(max(0.0, start + call.duration_s - loop.time()))
        return call.result()
