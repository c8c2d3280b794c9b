"""The asyncio shell around :class:`TransactionLayer`: one UDP socket, one timer.

It only moves bytes and time: datagrams go into the layer with ``loop.time()``, the
layer's datagrams go out of the socket, its events go to a callback, and one
``call_at`` handle is re-armed for the layer's earliest deadline after every step.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, cast

from .transaction import Address, Event, MessageDropped
from .transaction_layer import TransactionLayer

logger = logging.getLogger(__name__)


class SipTransport(asyncio.DatagramProtocol):
    """A UDP endpoint that drives a transaction layer."""

    def __init__(self, layer: TransactionLayer, on_event: Callable[[Event], None]) -> None:
        self.layer = layer
        self._on_event = on_event
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.DatagramTransport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self.closed = asyncio.Event()
        self._flushing = False

    @classmethod
    async def listen(
        cls, host: str, port: int, layer: TransactionLayer, on_event: Callable[[Event], None]
    ) -> SipTransport:
        """Bind a UDP socket on ``host:port`` (port 0 picks a free one)."""
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_datagram_endpoint(
            lambda: cls(layer, on_event), local_addr=(host, port)
        )
        return protocol

    @property
    def local_address(self) -> Address:
        """The bound ``(host, port)``."""
        assert self._transport is not None
        host, port = self._transport.get_extra_info("sockname")[:2]
        return host, port

    def now(self) -> float:
        """The clock the layer runs on."""
        return self._loop.time()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # The selector loop's UDP transport does not subclass DatagramTransport on 3.11.
        self._transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, ...]) -> None:
        source = (str(addr[0]), int(addr[1]))
        self.layer.receive_datagram(data, source, self.now())
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
        """Send what the layer queued, hand out its events and re-arm the timer."""
        if self._flushing:
            return  # called from an event handler: the running loop below picks it up
        self._flushing = True
        try:
            self._drain()
        finally:
            self._flushing = False
        self._arm()

    def _drain(self) -> None:
        while True:
            for data, destination in self.layer.datagrams_to_send():
                if self._transport is not None and not self._transport.is_closing():
                    try:
                        self._transport.sendto(data, destination)
                    except OSError as exc:
                        self.layer.transport_error(destination, str(exc))
            event = self.layer.next_event()
            if event is None:
                break
            if isinstance(event, MessageDropped):
                logger.info("dropped SIP datagram from %s: %s", event.source, event.reason)
            self._on_event(event)

    def _arm(self) -> None:
        deadline = self.layer.get_timer()
        if deadline == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = deadline
        if deadline is not None:
            self._timer = self._loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        self.layer.handle_timer(self.now())
        self.flush()

    def close(self) -> None:
        """Close the socket."""
        if self._transport is not None:
            self._transport.close()
