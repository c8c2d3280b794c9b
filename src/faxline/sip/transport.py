"""The asyncio shell around a sans-I/O SIP endpoint: one UDP socket, one timer.

It only moves bytes and time: datagrams go into the endpoint with ``loop.time()``, the
endpoint's datagrams go out of the socket, its owner is told to take the events, and one
``call_at`` handle is re-armed for the endpoint's earliest deadline after every step.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, Protocol, cast

from .transaction import Address

logger = logging.getLogger(__name__)


class Endpoint(Protocol):
    """What the shell drives (:class:`~faxline.sip.agent.UserAgentCore`)."""

    def receive_datagram(self, data: bytes, source: Address, now: float) -> None: ...

    def handle_timer(self, now: float) -> None: ...

    def get_timer(self) -> float | None: ...

    def datagrams_to_send(self) -> list[tuple[bytes, Address]]: ...

    def transport_error(self, destination: Address, reason: str, now: float) -> None: ...


class SipTransport(asyncio.DatagramProtocol):
    """A UDP endpoint that drives a sans-I/O SIP endpoint.

    ``deliver`` is called after every step to take the endpoint's events; it returns
    whether it took any (their handlers may have queued more datagrams).
    """

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._endpoint: Endpoint | None = None
        self._deliver: Callable[[], bool] = lambda: False
        self._transport: asyncio.DatagramTransport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self.closed = asyncio.Event()
        self._flushing = False

    @classmethod
    async def bind(cls, host: str, port: int) -> SipTransport:
        """Bind a UDP socket on ``host:port`` (port 0 picks a free one); then :meth:`drive`."""
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_datagram_endpoint(cls, local_addr=(host, port))
        return protocol

    def drive(self, endpoint: Endpoint, deliver: Callable[[], bool]) -> None:
        """Start feeding ``endpoint`` (datagrams that came before are dropped)."""
        self._endpoint = endpoint
        self._deliver = deliver

    @property
    def local_address(self) -> Address:
        """The bound ``(host, port)``."""
        assert self._transport is not None
        host, port = self._transport.get_extra_info("sockname")[:2]
        return host, port

    def now(self) -> float:
        """The clock the endpoint runs on."""
        return self._loop.time()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # The selector loop's UDP transport does not subclass DatagramTransport on 3.11.
        self._transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, ...]) -> None:
        if self._endpoint is None:
            return
        self._endpoint.receive_datagram(data, (str(addr[0]), int(addr[1])), self.now())
        self.flush()

    def error_received(self, exc: Exception) -> None:
        # ICMP errors on a UDP socket carry no peer address we could trust here; the
        # transactions' own timers will fail the affected requests.
        logger.debug("UDP error on the SIP socket: %s", exc)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self.closed.set()

    def flush(self) -> None:
        """Send what the endpoint queued, hand out its events and re-arm the timer."""
        if self._flushing or self._endpoint is None:
            return  # called from an event handler: the running loop below picks it up
        self._flushing = True
        try:
            while True:
                self._send_all(self._endpoint)
                if not self._deliver():
                    break
            self._send_all(self._endpoint)
        finally:
            self._flushing = False
        self._arm()

    def _send_all(self, endpoint: Endpoint) -> None:
        for data, destination in endpoint.datagrams_to_send():
            transport = self._transport
            if transport is None or transport.is_closing():
                continue
            try:
                transport.sendto(data, destination)
            except OSError as exc:
                endpoint.transport_error(destination, str(exc), self.now())

    def _arm(self) -> None:
        assert self._endpoint is not None
        deadline = self._endpoint.get_timer()
        if deadline == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = deadline
        if deadline is not None and not self.closed.is_set():
            self._timer = self._loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        if self._endpoint is not None:
            self._endpoint.handle_timer(self.now())
            self.flush()

    def close(self) -> None:
        """Close the socket."""
        if self._transport is not None:
            self._transport.close()
