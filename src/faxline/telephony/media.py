"""The media side of one call, sans-I/O: which stream runs, on which port, towards whom.

A :class:`CallMedia` has two ports, ``"rtp"`` and ``"udptl"`` (the shell's two sockets),
and at most one running stream (:mod:`.streams`). Datagrams are handed in with
:meth:`CallMedia.receive`; those that arrive before their stream starts (the far end may
start a moment before us, e.g. right after a re-INVITE's 200) are kept, up to
:data:`BACKLOG` of them, and fed to it when it starts; datagrams for a port whose stream is
not running are dropped. A running stream latches on to the source of its first
well-formed datagram and drops datagrams from any other address (counted), so a stray or
hostile sender cannot reset its sequence numbers.

:meth:`CallMedia.tick` moves the stream on by whole 20 ms blocks (several at once when
the shell's clock is late: they are caught up, never dropped), queues the datagrams to send
and asks the :class:`~faxline.telephony.streams.Watchdog` whether the far end has gone
quiet or the call is too long. What the media report is read with ``next_event()``: the fax
session's events (:class:`~faxline.fax.events.PhaseB`, ``PageTransferred``, ``Completed``)
and :class:`MediaTimeout`, :class:`MaxDuration`, :class:`MediaFailed`.

The media never own fax sessions: the call flow creates, hangs up and closes them.
"""

from __future__ import annotations

import logging
import random
from collections import deque
from dataclasses import dataclass
from typing import Literal

from faxline.fax.audio import AudioFaxSession
from faxline.fax.events import FaxEvent
from faxline.fax.t38 import T38FaxSession
from faxline.sip.sdp import T38Options
from faxline.telephony.streams import T38_QUIET_FLOOR_S, AudioStream, T38Stream, Watchdog

logger = logging.getLogger(__name__)

Address = tuple[str, int]
Port = Literal["rtp", "udptl"]
BACKLOG = 64
"""Datagrams kept for a stream that has not started yet."""


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
    """A tick raised (the fax engine failed); the media have stopped."""

    reason: str


MediaEvent = FaxEvent | MediaTimeout | MaxDuration | MediaFailed
"""Anything :class:`CallMedia` reports."""


class _Port:
    """One socket's side: its stream (if running), a short backlog, the latched peer."""

    def __init__(self, name: Port) -> None:
        self.name = name
        self.stream: AudioStream | T38Stream | None = None
        self.backlog: deque[tuple[bytes, Address]] = deque(maxlen=BACKLOG)
        self.accepting = True
        self.peer: Address | None = None
        self.foreign = 0

    def deliver(self, data: bytes, source: Address, now: float) -> None:
        stream = self.stream
        assert stream is not None
        if self.peer is not None and source != self.peer:
            self.foreign += 1
            return
        if stream.receive(data, now) and self.peer is None:
            self.peer = source


class CallMedia:
    """The media of one call (see the module docstring)."""

    def __init__(
        self,
        *,
        rng: random.Random,
        media_timeout_s: float,
        max_duration_s: float,
        now: float,
        t38_floor_s: float = T38_QUIET_FLOOR_S,
    ) -> None:
        self._rng = rng
        self.watchdog = Watchdog(
            media_timeout_s=media_timeout_s,
            max_duration_s=max_duration_s,
            now=now,
            t38_floor_s=t38_floor_s,
        )
        self._ports: dict[Port, _Port] = {"rtp": _Port("rtp"), "udptl": _Port("udptl")}
        self.stream: AudioStream | T38Stream | None = None
        self._port: _Port | None = None
        self._remote: Address | None = None
        self._started = False
        self._stopped = False
        self._alarm_raised = False
        self._streams: list[AudioStream | T38Stream] = []
        self._outbox: list[tuple[Port, bytes, Address]] = []
        self._events: deque[MediaEvent] = deque()

    @property
    def transport(self) -> str | None:
        """``"audio"``, ``"t38"`` or None, after the stream running now."""
        if self.stream is None:
            return None
        return "audio" if isinstance(self.stream, AudioStream) else "t38"

    @property
    def running(self) -> bool:
        """Whether a stream runs (the shell ticks the media only then)."""
        return self.stream is not None and not self._stopped

    # -- input ----------------------------------------------------------------------------

    def receive(self, port: Port, data: bytes, source: Address, now: float) -> None:
        """A datagram arrived on ``port``'s socket."""
        side = self._ports[port]
        if side.stream is not None:
            side.deliver(data, source, now)
        elif side.accepting:
            side.backlog.append((data, source))

    def tick(self, now: float, blocks: int = 1) -> None:
        """Move the running stream on ``blocks`` 20 ms blocks (due ticks are caught up)."""
        stream, port, remote = self.stream, self._port, self._remote
        if stream is None or port is None or remote is None or self._stopped:
            return
        try:
            for _ in range(blocks):
                for datagram in stream.tick(now):
                    self._outbox.append((port.name, datagram, remote))
            session = stream.session
            if session is not None:
                while (event := session.next_event()) is not None:
                    self._events.append(event)
        except Exception as exc:
            # Whatever broke, the call flow must hear of it, or the call would hang with
            # nobody watching its media.
            logger.exception("media tick failed")
            self.stop()
            self._events.append(MediaFailed(f"{type(exc).__name__}: {exc}"))
            return
        if not self._alarm_raised:
            alarm = self.watchdog.check(stream, now)
            if alarm is not None:
                # Raised once; the call flow ends the call (and stops us) on it.
                self._alarm_raised = True
                if alarm == "max_duration":
                    self._events.append(MaxDuration(now - self.watchdog.started))
                else:
                    self._events.append(MediaTimeout(self.watchdog.quiet_for(stream, now)))

    # -- output ---------------------------------------------------------------------------

    def datagrams_to_send(self) -> list[tuple[Port, bytes, Address]]:
        """Take the datagrams queued since the last call: (port, data, destination)."""
        out, self._outbox = self._outbox, []
        return out

    def next_event(self) -> MediaEvent | None:
        """Take the next event, if any."""
        events = self._events
        return events.popleft() if events else None

    # -- commands -------------------------------------------------------------------------

    def start_audio(
        self, session: AudioFaxSession | None, remote: Address, payload_type: int, now: float
    ) -> AudioStream:
        """Run ``session`` on G.711 (``payload_type`` 0 or 8) with the far end at ``remote``.

        ``session`` None sends silence (see :class:`~faxline.telephony.streams.AudioStream`).
        """
        rng = self._rng
        stream = AudioStream(
            session,
            payload_type=payload_type,
            ssrc=rng.getrandbits(32),
            sequence=rng.getrandbits(16),
            timestamp=rng.getrandbits(32),
            now=now,
        )
        self._switch(stream, self._ports["rtp"], remote, now)
        return stream

    def start_t38(
        self, session: T38FaxSession, remote: Address, options: T38Options | None, now: float
    ) -> T38Stream:
        """Run ``session`` on T.38; ``options`` are the far end's (from its SDP)."""
        stream = T38Stream(session, remote=options, now=now)
        self._switch(stream, self._ports["udptl"], remote, now)
        return stream

    def update_remote(self, remote: Address) -> None:
        """The far end moved its media (a re-INVITE that kept the transport)."""
        self._remote = remote
        if self._port is not None:
            self._port.peer = None  # latch on to where its media comes from now

    def stop(self) -> None:
        """Stop the stream; what still arrives is dropped."""
        self._stopped = True
        for side in self._ports.values():
            side.stream = None
            side.accepting = False
            side.backlog.clear()

    def log_summary(self) -> None:
        """Log what each stream and port saw (at the end of the call)."""
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
        for side in self._ports.values():
            if side.foreign:
                logger.info(
                    "dropped %d datagrams from strangers on the %s socket",
                    side.foreign,
                    side.name,
                )

    def _switch(
        self, stream: AudioStream | T38Stream, port: _Port, remote: Address, now: float
    ) -> None:
        if self._stopped:
            raise RuntimeError("the call's media have stopped")
        old = self._port
        if old is not None and old is not port:
            old.stream = None
            old.accepting = False  # what still comes on the old socket is stale
            old.backlog.clear()
        self.stream = stream
        self._port = port
        self._remote = remote
        self.watchdog.restart(now)
        self._alarm_raised = False
        port.stream = stream
        port.peer = None
        while port.backlog:
            data, source = port.backlog.popleft()
            port.deliver(data, source, now)
        self._streams.append(stream)
        if not self._started:
            self._started = True
            self.watchdog.started = now  # the maximum duration counts from the first media
