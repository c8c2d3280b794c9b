"""The asyncio shell of the fax calls: one media clock per event loop, and the sockets.

Every call has two non-blocking UDP sockets (:class:`MediaSockets`: RTP on an even port,
UDPTL), opened before the call is placed or answered since their ports go into the SDP.
They are not registered with the event loop: the :class:`MediaClock` wakes up once every
20 ms (:attr:`MediaClock.tick_s`) for all calls together and, in one pass, asks the kernel
which sockets have data (one ``epoll``), drains them, moves every running call's media on
(the calls in the order they came, the same every pass, so each call's packets leave at the
same offset into it), fires the flows' timers, and sends what the calls queued. Ticks are
scheduled from a fixed origin (so they stay evenly spaced and a slow pass does not make the
calls drift), and a pass that comes late runs the ticks it missed (they are caught up, never
dropped). Between calls the clock does not tick; a flow that waits for something other
than media (a BYE's answer, an ACK) is woken by its own deadline.

The SIP side of every call goes through the :class:`~faxline.sip.ua.UserAgent` it was
placed on: the clock routes the core's events about a call to its flow (``attach``) and
flushes the user agent after a pass in which a flow spoke SIP.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import select
import socket
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

from faxline.sip.events import Handle, UaEvent
from faxline.sip.ua import UserAgent
from faxline.telephony.errors import MediaSetupError
from faxline.telephony.flow import FaxCallFlow
from faxline.telephony.media import CallMedia, Port
from faxline.telephony.results import SipFaxResult
from faxline.telephony.streams import T38_QUIET_FLOOR_S, TICK_S

logger = logging.getLogger(__name__)

PORTS: tuple[Port, ...] = ("rtp", "udptl")
RECEIVE_SIZE = 4096
"""Larger than any RTP or UDPTL datagram a fax call carries."""


class MediaSockets:
    """The RTP and UDPTL sockets of one call (non-blocking, read by the media clock)."""

    def __init__(self, rtp: socket.socket, udptl: socket.socket) -> None:
        self.rtp = rtp
        self.udptl = udptl

    @classmethod
    def open(cls, host: str) -> MediaSockets:
        """Bind both on ``host`` (RTP on an even port); raise :class:`MediaSetupError`."""
        rtp = _bind("RTP", host, even=True)
        try:
            udptl = _bind("UDPTL", host, even=False)
        except BaseException:
            rtp.close()
            raise
        return cls(rtp, udptl)

    @property
    def rtp_port(self) -> int:
        """Our RTP port (for the SDP)."""
        return int(self.rtp.getsockname()[1])

    @property
    def udptl_port(self) -> int:
        """Our UDPTL port (for the SDP)."""
        return int(self.udptl.getsockname()[1])

    def socket_of(self, port: Port) -> socket.socket:
        """The socket behind ``port``."""
        return self.rtp if port == "rtp" else self.udptl

    def close(self) -> None:
        """Close both sockets."""
        self.rtp.close()
        self.udptl.close()


def _bind(name: str, host: str, *, even: bool) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _ in range(20):
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            sock.bind((host, 0))
        except OSError as exc:
            sock.close()
            raise MediaSetupError(f"cannot open a {name} socket on {host}: {exc}") from exc
        if not even or sock.getsockname()[1] % 2 == 0:
            return sock
        sock.close()
    raise MediaSetupError(f"no even port for RTP on {host} after 20 tries")


SPACING_BUCKET_MS = 0.1
SPACING_BUCKETS = 1000
"""Spacing jitter histogram: 0.1 ms buckets up to 100 ms (the last one holds the rest)."""


class SpacingStats:
    """How evenly the clock sent a call's ticks: |interval - tick| between its media
    packets, in a fixed histogram (no per-packet objects). A caught-up tick's packet leaves
    right after the late one, so it counts as a short interval: lateness shows twice."""

    def __init__(self) -> None:
        self.counts = [0] * SPACING_BUCKETS
        self.total = 0
        self.worst_ms = 0.0

    def add(self, jitter_s: float) -> None:
        ms = abs(jitter_s) * 1000.0
        self.counts[min(int(ms / SPACING_BUCKET_MS), SPACING_BUCKETS - 1)] += 1
        self.total += 1
        if ms > self.worst_ms:
            self.worst_ms = ms

    def percentile_ms(self, fraction: float) -> float:
        """The upper edge of the bucket holding the ``fraction`` quantile."""
        if not self.total:
            return 0.0
        rank = fraction * self.total
        seen = 0
        for index, count in enumerate(self.counts):
            seen += count
            if seen >= rank:
                return (index + 1) * SPACING_BUCKET_MS
        return SPACING_BUCKETS * SPACING_BUCKET_MS


@dataclass(eq=False)
class _Running:
    """A call the clock drives: its flow, sockets, user agent and the waiting coroutine."""

    flow: FaxCallFlow
    sockets: MediaSockets
    ua: UserAgent
    done: asyncio.Future[SipFaxResult]
    handles: set[Handle] = field(default_factory=set)
    sent_at: float | None = None
    """When the clock last sent this call's tick (for the spacing statistics)."""


def _handle_count(flow: FaxCallFlow) -> int:
    # The flow's handles only ever grow (INVITE or incoming, then the call) while it runs:
    # a count tells whether one is new, without building the set every tick.
    return (flow.invite is not None) + (flow.incoming is not None) + (flow.call is not None)


class MediaClock:
    """Drives every fax call of one event loop (see the module docstring).

    ``tick_s`` is the wall-clock length of one 20 ms media block. Only tests that connect
    two faxline endpoints in one process may shorten it: the fax sessions count samples,
    not seconds, so the calls then run faster than real time (SIP timers, clearing delays
    and the media watchdog stay in seconds; the T.38 quiet floor is scaled, since it is
    T.30's time).
    """

    _per_loop: ClassVar[weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, MediaClock]] = (
        weakref.WeakKeyDictionary()
    )

    def __init__(
        self, tick_s: float = TICK_S, *, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        if not 0.001 <= tick_s <= 0.1:
            raise ValueError("tick_s must be between 1 and 100 ms")
        self.tick_s = tick_s
        # What the spacing is measured on: the wall clock, when the packets really leave
        # (a test on virtual time passes its loop's clock).
        self._monotonic = monotonic
        self._loop: asyncio.AbstractEventLoop | None = None
        # A dict, not a set: the pass visits the calls in the order they came, every time,
        # so each call's packets leave at the same offset into the pass (even spacing).
        self._calls: dict[_Running, None] = {}
        # epoll itself (no selectors layer): one look-up per ready socket, by its fd.
        self._epoll = select.epoll()
        self._ready: dict[int, tuple[socket.socket, CallMedia, Port]] = {}
        self._origin = 0.0
        self._ticks = 0
        self._ticking = False
        self._handle: asyncio.TimerHandle | None = None
        self._handle_at: float | None = None
        self.late_ticks = 0
        """Ticks that were run late, caught up by a later pass (for tests and metrics)."""
        self.spacing = SpacingStats()
        """Spacing of the ticks' sends since the clock last went idle (logged then)."""

    @classmethod
    def running(cls) -> MediaClock:
        """The default (20 ms) clock of the running event loop."""
        loop = asyncio.get_running_loop()
        clock = cls._per_loop.get(loop)
        if clock is None:
            clock = cls._per_loop[loop] = cls()
        return clock

    @property
    def t38_floor_s(self) -> float:
        """The T.38 quiet floor in wall-clock seconds at this tick."""
        return T38_QUIET_FLOOR_S * self.tick_s / TICK_S

    @property
    def calls(self) -> int:
        """How many calls the clock drives now."""
        return len(self._calls)

    async def run(self, flow: FaxCallFlow, sockets: MediaSockets, ua: UserAgent) -> SipFaxResult:
        """Drive ``flow`` to its end; cancelling the task aborts the call (CANCEL or BYE)."""
        loop = self._loop = asyncio.get_running_loop()
        running = _Running(flow, sockets, ua, loop.create_future())
        self._calls[running] = None
        for port in PORTS:
            sock = sockets.socket_of(port)
            self._ready[sock.fileno()] = (sock, flow.media, port)
            self._epoll.register(sock.fileno(), select.EPOLLIN)
        try:
            self._after(running)
            ua.flush()
            self._schedule()
            return await running.done
        except asyncio.CancelledError:
            flow.abort(loop.time())
            self._send(running)
            ua.flush()
            raise
        finally:
            self._calls.pop(running, None)
            for port in PORTS:
                fd = sockets.socket_of(port).fileno()
                self._epoll.unregister(fd)
                del self._ready[fd]
            for handle in running.handles:
                ua.detach(handle)
            flow.media.log_summary()

    # -- one pass -----------------------------------------------------------------------

    def _on_timer(self) -> None:
        self._handle = None
        self._handle_at = None
        assert self._loop is not None
        now = self._loop.time()
        blocks = 0
        if self._ticking:
            # The ticks due by now; more than one when the loop was late.
            due = math.floor((now - self._origin) / self.tick_s + 1e-6) - self._ticks
            blocks = max(due, 1 if now >= self._origin + (self._ticks + 1) * self.tick_s else 0)
            self._ticks += blocks
            self.late_ticks += max(0, blocks - 1)
        self._receive(now)
        touched: set[UserAgent] = set()
        # What _schedule would find, gathered on the way (one look at each call a pass).
        ticking = False
        earliest: float | None = None
        for running in list(self._calls):
            flow = running.flow
            media = flow.media
            if blocks and media.running:
                flow.tick(now, blocks)
                self._spaced(running, blocks)
            deadline = flow.get_timer()
            if deadline is not None and deadline <= now:
                flow.handle_timer(now)
                deadline = flow.get_timer()
            self._send(running)
            if running.ua.core.has_output:
                touched.add(running.ua)
            if flow.finished or len(running.handles) < _handle_count(flow):
                self._after(running)
            if media.running:
                ticking = True
            if deadline is not None and (earliest is None or deadline < earliest):
                earliest = deadline
        if touched:
            for ua in touched:
                ua.flush()  # its events may move any flow on: look at them all again
            self._schedule()
        else:
            self._arm(ticking, earliest)

    def _spaced(self, running: _Running, blocks: int) -> None:
        # Measured when the tick's packets are about to leave: what the far end sees.
        sent = self._monotonic()
        last = running.sent_at
        running.sent_at = sent
        if last is None:
            return
        spacing = self.spacing
        spacing.add(sent - last - self.tick_s)
        for _ in range(blocks - 1):  # caught-up ticks leave at once
            spacing.add(self.tick_s)

    def _receive(self, now: float) -> None:
        ready = self._ready
        for fd, _ in self._epoll.poll(0):
            sock, media, port = ready[fd]
            while True:
                try:
                    data, addr = sock.recvfrom(RECEIVE_SIZE)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError as exc:
                    # ICMP port unreachable after the far end closed its socket, typically;
                    # the watchdog notices a far end that is really gone.
                    logger.debug("UDP error on a %s socket: %s", port, exc)
                    break
                media.receive(port, data, (str(addr[0]), int(addr[1])), now)

    def _send(self, running: _Running) -> None:
        datagrams = running.flow.media.datagrams_to_send()
        if not datagrams:
            return
        sockets = running.sockets
        for port, data, destination in datagrams:
            try:
                (sockets.rtp if port == "rtp" else sockets.udptl).sendto(data, destination)
            except OSError as exc:
                logger.debug("cannot send on a %s socket: %s", port, exc)

    def _log_spacing(self) -> None:
        spacing = self.spacing
        if spacing.total:
            # bench/sip reads this line (the sender's packet spacing jitter).
            logger.info(
                "media clock: %d packet intervals, spacing jitter p50 %.1f ms, p99 %.1f ms,"
                " max %.1f ms; %d late ticks caught up",
                spacing.total,
                spacing.percentile_ms(0.5),
                spacing.percentile_ms(0.99),
                spacing.worst_ms,
                self.late_ticks,
            )
        self.spacing = SpacingStats()

    # -- bookkeeping --------------------------------------------------------------------

    def _after(self, running: _Running) -> None:
        """Keep the flow's handles attached; hand out its result once it has one."""
        flow = running.flow
        handles = set(flow.handles)
        for handle in handles - running.handles:
            running.ua.attach(handle, functools.partial(self._on_sip, running))
        running.handles |= handles
        if flow.finished and not running.done.done():
            assert flow.result is not None
            running.done.set_result(flow.result)

    def _on_sip(self, running: _Running, event: UaEvent, now: float) -> None:
        running.flow.handle_sip(event, now)
        self._send(running)  # a re-INVITE's answer may start a stream: nothing to send yet
        self._after(running)
        self._schedule()

    def _schedule(self) -> None:
        """Arm the one timer: the next tick while media run, else the next flow deadline."""
        ticking = any(r.flow.media.running for r in self._calls)
        deadlines = [d for r in self._calls if (d := r.flow.get_timer()) is not None]
        self._arm(ticking, min(deadlines, default=None))

    def _arm(self, ticking: bool, earliest: float | None) -> None:
        """Arm the timer for the next tick (if ``ticking``) or the ``earliest`` deadline."""
        assert self._loop is not None
        if ticking and not self._ticking:
            self._origin, self._ticks = self._loop.time(), 0
        if self._ticking and not ticking:
            self._log_spacing()
        self._ticking = ticking
        at = earliest
        if ticking:
            tick = self._origin + (self._ticks + 1) * self.tick_s
            at = tick if at is None else min(at, tick)
        if at == self._handle_at:
            return
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._handle_at = at
        if at is not None:
            self._handle = self._loop.call_at(at, self._on_timer)
