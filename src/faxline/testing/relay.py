"""A lossy UDP relay: two sockets, datagrams forwarded between them, a seeded share dropped.

What arrives on side A's socket leaves from side B's socket towards B's peer, and the
reverse, so each peer sees the relay as the other end (symmetric RTP/UDPTL keep working).
A peer is fixed when the relay is opened or latched from the first datagram that side
receives. Losses come from :class:`Loss`, one seeded pattern per direction: the n-th
datagram of a direction is dropped or not whatever the other direction does, so a run is
repeatable. An optional ``rewrite`` hook sees every datagram that is not dropped and may
change it (an ALG that rewrites SDP) or swallow it (``None``); what it raises is kept in
``errors`` and the datagram is swallowed.
"""

from __future__ import annotations

import asyncio
import enum
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

Address = tuple[str, int]


class Direction(enum.Enum):
    """Which way a datagram travels through the relay."""

    A_TO_B = "a->b"  # arrived on side A's socket, leaves from side B's
    B_TO_A = "b->a"


class Loss:
    """A deterministic loss pattern: ``drop()`` is true for about ``fraction`` of calls."""

    def __init__(self, fraction: float, seed: int) -> None:
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"loss fraction {fraction} is not between 0 and 1")
        self.fraction = fraction
        self._random = random.Random(seed)

    def drop(self) -> bool:
        """Whether the next datagram is lost (always draws, so the pattern never shifts)."""
        return self._random.random() < self.fraction


@dataclass
class RelayStats:
    """What went through one direction of a relay."""

    forwarded: int = 0
    dropped: int = 0
    swallowed: int = 0  # not forwarded: the hook returned None or raised, or no peer yet
    dropped_sizes: list[int] = field(default_factory=list)

    @property
    def received(self) -> int:
        return self.forwarded + self.dropped + self.swallowed


Rewrite = Callable[[Direction, bytes], Awaitable[bytes | None]]


class _Side(asyncio.DatagramProtocol):
    def __init__(self, relay: LossyRelay, direction: Direction) -> None:
        self.relay = relay
        self.direction = direction  # of datagrams arriving here
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str | Any, ...]) -> None:
        self.relay._arrived(self.direction, data, (str(addr[0]), int(addr[1])))

    def error_received(self, exc: Exception) -> None:
        # An ICMP port-unreachable from a peer that went away: a lost datagram, no more.
        pass


class LossyRelay:
    """Forward datagrams between two UDP sockets in both directions, losing some."""

    def __init__(
        self,
        *,
        peer_a: Address | None = None,
        peer_b: Address | None = None,
        loss: float = 0.0,
        seed: int = 0,
        rewrite: Rewrite | None = None,
    ) -> None:
        self.peers: dict[Direction, Address | None] = {
            Direction.B_TO_A: peer_a,  # where datagrams for side A go
            Direction.A_TO_B: peer_b,
        }
        self.losses = {
            Direction.A_TO_B: Loss(loss, seed),
            Direction.B_TO_A: Loss(loss, seed + 1),
        }
        self.stats = {d: RelayStats() for d in Direction}
        self.rewrite = rewrite
        self.errors: list[Exception] = []  # what the rewrite hook raised
        self._sides: dict[Direction, _Side] = {}
        self._queue: asyncio.Queue[tuple[Direction, bytes]] = asyncio.Queue()
        self._pump: asyncio.Task[None] | None = None
        self._waiters: list[tuple[Direction, int, asyncio.Future[None]]] = []

    @classmethod
    async def open(
        cls,
        host: str = "127.0.0.1",
        *,
        port_a: int = 0,
        port_b: int = 0,
        peer_a: Address | None = None,
        peer_b: Address | None = None,
        loss: float = 0.0,
        seed: int = 0,
        rewrite: Rewrite | None = None,
    ) -> LossyRelay:
        """Bind side A's and side B's sockets on ``host`` (port 0: any) and start relaying.

        ``peer_a`` is where datagrams arriving on side B go (latched from the first
        datagram side A receives when None), ``peer_b`` likewise for side A's datagrams.
        """
        relay = cls(peer_a=peer_a, peer_b=peer_b, loss=loss, seed=seed, rewrite=rewrite)
        loop = asyncio.get_running_loop()
        for direction, port in ((Direction.A_TO_B, port_a), (Direction.B_TO_A, port_b)):
            _, side = await loop.create_datagram_endpoint(
                lambda d=direction: _Side(relay, d),  # type: ignore[misc]
                local_addr=(host, port),
            )
            relay._sides[direction] = side
        if rewrite is not None:
            relay._pump = loop.create_task(relay._run_pump())
        return relay

    @property
    def address_a(self) -> Address:
        """Side A's socket: peer A sends here."""
        return self._address(Direction.A_TO_B)

    @property
    def address_b(self) -> Address:
        """Side B's socket: peer B sends here."""
        return self._address(Direction.B_TO_A)

    @property
    def peer_a(self) -> Address | None:
        """Where datagrams arriving on side B go."""
        return self.peers[Direction.B_TO_A]

    @peer_a.setter
    def peer_a(self, address: Address) -> None:
        self.peers[Direction.B_TO_A] = address

    @property
    def peer_b(self) -> Address | None:
        """Where datagrams arriving on side A go."""
        return self.peers[Direction.A_TO_B]

    @peer_b.setter
    def peer_b(self, address: Address) -> None:
        self.peers[Direction.A_TO_B] = address

    @property
    def dropped(self) -> int:
        """Datagrams lost in both directions."""
        return sum(s.dropped for s in self.stats.values())

    @property
    def forwarded(self) -> int:
        """Datagrams delivered in both directions."""
        return sum(s.forwarded for s in self.stats.values())

    async def settled(self, direction: Direction, count: int) -> None:
        """Wait until ``count`` datagrams have gone ``direction`` (forwarded, lost or
        swallowed: the last ones may be losses, which nobody receives)."""
        if self.stats[direction].received >= count:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((direction, count, future))
        await future

    def _counted(self) -> None:
        waiting = []
        for direction, count, future in self._waiters:
            if self.stats[direction].received >= count:
                if not future.done():
                    future.set_result(None)
            else:
                waiting.append((direction, count, future))
        self._waiters = waiting

    def close(self) -> None:
        """Close both sockets."""
        if self._pump is not None:
            self._pump.cancel()
        for side in self._sides.values():
            if side.transport is not None:
                side.transport.close()

    def _address(self, direction: Direction) -> Address:
        side = self._sides[direction]
        assert side.transport is not None
        host, port = side.transport.get_extra_info("sockname")[:2]
        return str(host), int(port)

    def _arrived(self, direction: Direction, data: bytes, source: Address) -> None:
        back = Direction.B_TO_A if direction is Direction.A_TO_B else Direction.A_TO_B
        if self.peers[back] is None:
            self.peers[back] = source  # the sender is who replies go back to
        stats = self.stats[direction]
        if self.losses[direction].drop():
            stats.dropped += 1
            stats.dropped_sizes.append(len(data))
            self._counted()
            return
        if self.rewrite is None:
            self._send(direction, data)
        else:
            self._queue.put_nowait((direction, data))

    async def _run_pump(self) -> None:
        assert self.rewrite is not None
        while True:
            direction, data = await self._queue.get()
            try:
                out = await self.rewrite(direction, data)
            except Exception as exc:  # a bug in the hook: kept for the test to see
                self.errors.append(exc)
                out = None
            if out is None:
                self.stats[direction].swallowed += 1
                self._counted()
            else:
                self._send(direction, out)

    def _send(self, direction: Direction, data: bytes) -> None:
        peer = self.peers[direction]
        out = self._sides[Direction.B_TO_A if direction is Direction.A_TO_B else Direction.A_TO_B]
        if peer is None or out.transport is None:
            self.stats[direction].swallowed += 1  # nobody to send it to yet
        else:
            out.transport.sendto(data, peer)
            self.stats[direction].forwarded += 1
        self._counted()
