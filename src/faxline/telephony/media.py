"""The asyncio shell around the media streams: two UDP sockets and one 20 ms ticker.

A :class:`MediaLink` is opened before the call is placed or answered (its ports go into
the SDP): one socket for RTP and one for UDPTL, on ``host`` and ephemeral ports (the RTP
port even, as RFC 3550 asks). Datagrams are handed to the running stream as they arrive;
those that arrive before their stream starts (the far end may start a moment before us,
e.g. right after a re-INVITE's 200) are kept, up to :data:`BACKLOG` of them, and fed to it
when it starts. Datagrams for a stream that is not running are dropped. A running stream
latches on to the source of its first well-formed datagram and drops datagrams from any
other address (counted), so a stray or hostile sender cannot reset its sequence numbers.

Once :meth:`MediaLink.start_audio` or :meth:`MediaLink.start_t38` is called, one timer
task ticks every 20 ms (:attr:`MediaOptions.tick_s`), paced on the event loop's clock like
:func:`faxline.fax.line.run_call_paced` (deadlines from the start, so a slow tick does
not make the call drift; after a stall of more than :data:`MAX_LAG_S` the schedule is
re-based instead of bursting). Each tick moves the current stream on, sends its
datagrams, forwards the fax session's events and asks the :class:`Watchdog` whether the
far end has gone quiet or the call is too long. Everything the link reports goes to one
callback: fax events (:class:`~faxline.fax.events.PhaseB`, ``PageTransferred``,
``Completed``) and the link's own :class:`MediaTimeout`, :class:`MaxDuration` and
:class:`MediaFailed`.

The link never owns fax sessions: the call flow creates, hangs up and closes them.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from faxline.fax.audio import AudioFaxSession
from faxline.fax.events import FaxEvent
from faxline.fax.t38 import T38FaxSession
from faxline.sip.sdp import T38Options
from faxline.telephony.errors import MediaSetupError
from faxline.telephony.streams import (
    T38_QUIET_FLOOR_S,
    TICK_S,
    AudioStream,
    T38Stream,
    Watchdog,
)

logger = logging.getLogger(__name__)

Address = tuple[str, int]
BACKLOG = 64
"""Datagrams kept for a stream that has not started yet."""
MAX_LAG_S = 0.2
"""Behind schedule by more than this, the ticker re-bases rather than catching up."""


@dataclass(frozen=True)
class MediaOptions:
    """Tuning of the media shell; the defaults are what a real far end needs.

    ``tick_s`` is the wall-clock time of one 20 ms media block. Only tests that connect
    two faxline endpoints in one process may shorten it (both ends alike): the fax
    sessions count samples, not seconds, so the call then runs faster than real time.
    SIP timers, clearing delays and the media watchdog stay in wall-clock seconds.
    """

    tick_s: float = TICK_S

    def __post_init__(self) -> None:
        if not 0.001 <= self.tick_s <= 0.1:
            raise ValueError("tick_s must be between 1 and 100 ms")


@dataclass(frozen=True)
class MediaTimeout:
    """Nothing came from the far end for ``quiet_s`` seconds: it has vanished."""

    quiet_s: float


@dataclass(frozen=True)
class MaxDuration:
    """The call has lasted ``max_duration_s``."""

    duration_s: float


@dataclass(frozen=True)
class MediaFailed:
    """A tick raised (the fax engine or a socket failed); the ticker has stopped."""

    reason: str


MediaEvent = FaxEvent | MediaTimeout | MaxDuration | MediaFailed
"""Anything a :class:`MediaLink` reports."""


class _Endpoint(asyncio.DatagramProtocol):
    """One UDP socket: datagrams go to the running stream or wait in a short backlog."""

    def __init__(self, name: str, clock: Callable[[], float]) -> None:
        self.name = name
        self._clock = clock
        self.transport: asyncio.DatagramTransport | None = None
        self.stream: AudioStream | T38Stream | None = None
        self.backlog: deque[tuple[bytes, Address]] = deque(maxlen=BACKLOG)
        self.accepting = True
        self.peer: Address | None = None
        self.foreign = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # The selector loop's UDP transport does not subclass DatagramTransport on 3.11.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, ...]) -> None:
        source = (str(addr[0]), int(addr[1]))
        if self.stream is not None:
            self.deliver(data, source, self._clock())
        elif self.accepting:
            self.backlog.append((data, source))

    def deliver(self, data: bytes, source: Address, now: float) -> None:
        """Hand a datagram to the stream if it comes from the far end.

        The far end is the source of the first well-formed datagram of the stream
        (latching, as NAT may change its address); later datagrams from elsewhere are
        counted and dropped, so a stray sender cannot disturb the sequence numbering.
        """
        stream = self.stream
        assert stream is not None
        if self.peer is not None and source != self.peer:
            self.foreign += 1
            return
        if stream.receive(data, now) and self.peer is None:
            self.peer = source

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable after the far end closed its socket, typically; the
        # watchdog notices a far end that is really gone.
        logger.debug("UDP error on the %s socket: %s", self.name, exc)

    def send(self, data: bytes, destination: Address) -> None:
        transport = self.transport
        if transport is not None and not transport.is_closing():
            try:
                transport.sendto(data, destination)
            except OSError as exc:
                logger.debug("cannot send on the %s socket: %s", self.name, exc)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    @property
    def port(self) -> int:
        assert self.transport is not None
        port: int = self.transport.get_extra_info("sockname")[1]
        return port


async def _bind(name: str, host: str, clock: Callable[[], float], even: bool) -> _Endpoint:
    loop = asyncio.get_running_loop()
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _ in range(20):
        try:
            _, endpoint = await loop.create_datagram_endpoint(
                lambda: _Endpoint(name, clock), local_addr=(host, 0), family=family
            )
        except OSError as exc:
            raise MediaSetupError(f"cannot open a {name} socket on {host}: {exc}") from exc
        if not even or endpoint.port % 2 == 0:
            return endpoint
        endpoint.close()
    raise MediaSetupError(f"no even port for RTP on {host} after 20 tries")


class MediaLink:
    """The media side of one call: an RTP and a UDPTL socket and the stream running now."""

    def __init__(
        self,
        host: str,
        rtp: _Endpoint,
        udptl: _Endpoint,
        on_event: Callable[[MediaEvent], None],
        watchdog: Watchdog,
        options: MediaOptions | None = None,
    ) -> None:
        self.options = options or MediaOptions()
        self.host = host
        self._rtp = rtp
        self._udptl = udptl
        self._on_event = on_event
        self.watchdog = watchdog
        self.stream: AudioStream | T38Stream | None = None
        self._endpoint: _Endpoint | None = None
        self._remote: Address | None = None
        self._task: asyncio.Task[None] | None = None
        self._loop = asyncio.get_running_loop()
        self._alarm_raised = False
        self._streams: list[AudioStream | T38Stream] = []

    @classmethod
    async def open(
        cls,
        host: str,
        on_event: Callable[[MediaEvent], None],
        *,
        media_timeout_s: float,
        max_duration_s: float,
        options: MediaOptions | None = None,
    ) -> MediaLink:
        """Bind the two sockets on ``host``; raise :class:`MediaSetupError` if impossible.

        The maximum duration counts from the first stream's start (the answer).
        """
        loop = asyncio.get_running_loop()
        rtp = await _bind("RTP", host, loop.time, even=True)
        try:
            udptl = await _bind("UDPTL", host, loop.time, even=False)
        except BaseException:
            rtp.close()
            raise
        options = options or MediaOptions()
        watchdog = Watchdog(
            media_timeout_s=media_timeout_s,
            max_duration_s=max_duration_s,
            now=loop.time(),
            # The floor is call time: T.30's silences shrink with a faster tick.
            t38_floor_s=T38_QUIET_FLOOR_S * options.tick_s / TICK_S,
        )
        return cls(host, rtp, udptl, on_event, watchdog, options)

    @property
    def audio_port(self) -> int:
        """Our RTP port (for the SDP)."""
        return self._rtp.port

    @property
    def image_port(self) -> int:
        """Our UDPTL port (for the SDP)."""
        return self._udptl.port

    @property
    def transport(self) -> str | None:
        """``"audio"``, ``"t38"`` or None, after the stream running now."""
        if self.stream is None:
            return None
        return "audio" if isinstance(self.stream, AudioStream) else "t38"

    def start_audio(
        self, session: AudioFaxSession | None, remote: Address, payload_type: int
    ) -> AudioStream:
        """Run ``session`` on G.711 (``payload_type`` 0 or 8) with the far end at ``remote``."""
        now = self._loop.time()
        stream = AudioStream(
            session,
            payload_type=payload_type,
            ssrc=random.getrandbits(32),
            sequence=random.getrandbits(16),
            timestamp=random.getrandbits(32),
            now=now,
        )
        self._switch(stream, self._rtp, remote)
        return stream

    def start_t38(
        self, session: T38FaxSession, remote: Address, options: T38Options | None
    ) -> T38Stream:
        """Run ``session`` on T.38; ``options`` are the far end's (from its SDP)."""
        stream = T38Stream(session, remote=options, now=self._loop.time())
        self._switch(stream, self._udptl, remote)
        return stream

    def update_remote(self, remote: Address) -> None:
        """The far end moved its media (a re-INVITE that kept the transport)."""
        self._remote = remote
        if self._endpoint is not None:
            self._endpoint.peer = None  # latch on to where its media comes from now

    def _switch(
        self, stream: AudioStream | T38Stream, endpoint: _Endpoint, remote: Address
    ) -> None:
        old = self._endpoint
        if old is not None and old is not endpoint:
            old.stream = None
            old.accepting = False  # what still comes on the old socket is stale
            old.backlog.clear()
        self.stream = stream
        self._endpoint = endpoint
        self._remote = remote
        now = self._loop.time()
        self.watchdog.restart(now)
        self._alarm_raised = False
        endpoint.stream = stream
        endpoint.peer = None
        while endpoint.backlog:
            data, source = endpoint.backlog.popleft()
            endpoint.deliver(data, source, now)
        self._streams.append(stream)
        if self._task is None:
            self.watchdog.started = now  # the maximum duration counts from the first media
            self._task = self._loop.create_task(self._run(), name=f"media-{self.audio_port}")

    async def _run(self) -> None:
        loop = self._loop
        start = loop.time()
        ticks = 0
        tick_s = self.options.tick_s
        while True:
            ticks += 1
            delay = start + ticks * tick_s - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -MAX_LAG_S:
                logger.warning("media ticker %.0f ms behind; re-basing", -delay * 1000)
                start, ticks = loop.time(), 0
            try:
                self._tick(loop.time())
            except Exception as exc:
                # Whatever broke, the call flow must hear of it, or the call would hang
                # with nobody watching its media.
                logger.exception("media tick failed")
                self._on_event(MediaFailed(f"{type(exc).__name__}: {exc}"))
                return

    def _tick(self, now: float) -> None:
        stream, endpoint, remote = self.stream, self._endpoint, self._remote
        if stream is None or endpoint is None or remote is None:
            return
        for datagram in stream.tick(now):
            endpoint.send(datagram, remote)
        session = stream.session
        if session is not None:
            while (event := session.next_event()) is not None:
                self._on_event(event)
        if not self._alarm_raised:
            alarm = self.watchdog.check(stream, now)
            if alarm is not None:
                # Raised once; the call flow ends the call (and stops us) on it.
                self._alarm_raised = True
                if alarm == "max_duration":
                    self._on_event(MaxDuration(now - self.watchdog.started))
                else:
                    self._on_event(MediaTimeout(self.watchdog.quiet_for(stream, now)))

    def stop(self) -> None:
        """Stop ticking (the sockets stay open, so late datagrams are just dropped)."""
        if self._task is not None:
            self._task.cancel()
            self._task = None
        for endpoint in (self._rtp, self._udptl):
            endpoint.stream = None
            endpoint.accepting = False

    def close(self) -> None:
        """Stop ticking and close both sockets."""
        self.stop()
        for stream in self._streams:
            stats = stream.stats
            logger.info(
                "%s stream ended: %d received, %d sent, %d malformed, %d lost, "
                "%d recovered, %d ignored, %d rejected",
                stream.kind,
                stats.received,
                stats.sent,
                stats.malformed,
                stats.lost,
                stats.recovered,
                stats.ignored,
                stats.rejected,
            )
        for endpoint in (self._rtp, self._udptl):
            if endpoint.foreign:
                logger.info(
                    "dropped %d datagrams from strangers on the %s socket",
                    endpoint.foreign,
                    endpoint.name,
                )
            endpoint.close()
