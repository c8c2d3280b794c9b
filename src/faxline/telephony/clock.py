"""The asyncio shell of the fax calls: one media clock per event loop, and the sockets.

Every call has two non-blocking UDP sockets (:class:`MediaSockets`: RTP on an even port,
UDPTL), opened before the call is placed or answered since their ports go into the SDP.
They are not registered with the event loop: the :class:`MediaClock` wakes up once every
20 ms (:attr:`MediaClock.tick_s`) for all calls together and, in one pass, asks the kernel
which sockets have data (one ``epoll``), drains them, moves every running call's media on,
fires the flows' timers, and sends what the calls queued. Ticks are scheduled from a fixed
origin (so they stay evenly spaced and a slow pass does not make the calls drift), and a
pass that comes late runs the ticks it missed (they are caught up, never dropped). Between
calls the clock does not tick; a flow that waits for something other than media (a BYE's
answer, an ACK) is woken by its own deadline.

The SIP side of every call goes through the :class:`~faxline.sip.ua.UserAgent` it was
placed on: the clock routes the core's events about a call to its flow (``attach``) and
flushes the user agent after a pass in which a flow spoke SIP.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import selectors
import socket
import weakref
from dataclasses import dataclass, field
from typing import ClassVar

from faxline.sip.events import Handle, UaEvent
from faxline.sip.ua import UserAgent
from faxline.telephony.errors import MediaSetupError
from faxline.telephony.flow import FaxCallFlow
from faxline.telephony.media import Port
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


@dataclass(eq=False)
class _Running:
    """A call the clock drives: its flow, sockets, user agent and the waiting coroutine."""

    flow: FaxCallFlow
    sockets: MediaSockets
    ua: UserAgent
    done: asyncio.Future[SipFaxResult]
    handles: set[Handle] = field(default_factory=set)


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

    def __init__(self, tick_s: float = TICK_S) -> None:
        if not 0.001 <= tick_s <= 0.1:
            raise ValueError("tick_s must be between 1 and 100 ms")
        self.tick_s = tick_s
        self._loop: asyncio.AbstractEventLoop | None = None
        self._calls: set[_Running] = set()
        self._selector = selectors.DefaultSelector()
        self._origin = 0.0
        self._ticks = 0
        self._ticking = False
        self._handle: asyncio.TimerHandle | None = None
        self._handle_at: float | None = None
        self.late_ticks = 0
        """Ticks that were run late, caught up by a later pass (for tests and metrics)."""

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
        self._calls.add(running)
        for port in PORTS:
            self._selector.register(sockets.socket_of(port), selectors.EVENT_READ, (running, port))
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
            self._calls.discard(running)
            for port in PORTS:
                self._selector.unregister(sockets.socket_of(port))
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
        for running in list(self._calls):
            flow = running.flow
            if blocks and flow.media.running:
                flow.tick(now, blocks)
            deadline = flow.get_timer()
            if deadline is not None and deadline <= now:
                flow.handle_timer(now)
            self._send(running)
            if running.ua.core.has_output:
                touched.add(running.ua)
            self._after(running)
        for ua in touched:
            ua.flush()
        self._schedule()

    def _receive(self, now: float) -> None:
        for key, _ in self._selector.select(0):
            running, port = key.data
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            media = running.flow.media
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
        for port, data, destination in running.flow.media.datagrams_to_send():
            try:
                running.sockets.socket_of(port).sendto(data, destination)
            except OSError as exc:
                logger.debug("cannot send on a %s socket: %s", port, exc)

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
        assert self._loop is not None
        ticking = any(r.flow.media.running for r in self._calls)
        if ticking and not self._ticking:
            self._origin, self._ticks = self._loop.time(), 0
        self._ticking = ticking
        deadlines = [d for r in self._calls if (d := r.flow.get_timer()) is not None]
        if ticking:
            deadlines.append(self._origin + (self._ticks + 1) * self.tick_s)
        at = min(deadlines, default=None)
        if at == self._handle_at:
            return
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._handle_at = at
        if at is not None:
            self._handle = self._loop.call_at(at, self._on_timer)
