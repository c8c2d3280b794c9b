"""A network of sans-I/O endpoints in one process, on a clock that jumps from event to event.

Each :class:`Node` (a user agent core, a media endpoint, a scripted peer) is attached at an
address; :meth:`VirtualNetwork.run` takes what the nodes want to send, delivers it after
``latency`` seconds to the node at the destination (or nowhere), fires the nodes' timers
when they fall due, and moves :attr:`VirtualNetwork.now` straight to the next thing that
happens: a call of two minutes runs in the CPU time it costs, not in two minutes. Loss is
a hook (:attr:`VirtualNetwork.lose`) that may drop any datagram; every datagram is kept in
:attr:`VirtualNetwork.log` for assertions.
"""

from __future__ import annotations

import heapq
import itertools
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

Address = tuple[str, int]


class Node(Protocol):
    """What the network drives (the aioquic-style sans-I/O interface)."""

    def receive_datagram(self, data: bytes, source: Address, now: float) -> None: ...

    def handle_timer(self, now: float) -> None: ...

    def get_timer(self) -> float | None: ...

    def datagrams_to_send(self) -> list[tuple[bytes, Address]]: ...


@dataclass(frozen=True)
class Sent:
    """A datagram the network carried (or lost)."""

    at: float
    source: Address
    destination: Address
    data: bytes
    lost: bool


class VirtualNetwork:
    """Nodes by address, datagrams in flight, and the time."""

    def __init__(self, *, now: float = 1000.0, latency: float = 0.001) -> None:
        self.now = now
        self.latency = latency
        self.log: list[Sent] = []
        self.lose: Callable[[Sent], bool] = lambda sent: False
        self._nodes: dict[Address, Node] = {}
        self._in_flight: list[tuple[float, int, Sent]] = []
        self._order = itertools.count()
        self._idle_steps = 0

    def attach(self, address: Address, node: Node) -> None:
        """Put ``node`` at ``address`` (what is sent there reaches it)."""
        self._nodes[address] = node

    def detach(self, address: Address) -> None:
        """Take the node at ``address`` off the network (its datagrams vanish)."""
        self._nodes.pop(address, None)

    def sent(self, source: Address | None = None, destination: Address | None = None) -> list[Sent]:
        """The datagrams logged so far, from ``source`` and/or to ``destination``."""
        return [
            s
            for s in self.log
            if (source is None or s.source == source)
            and (destination is None or s.destination == destination)
        ]

    def collect(self) -> None:
        """Take every node's outgoing datagrams and put them in flight."""
        for address, node in list(self._nodes.items()):
            for data, destination in node.datagrams_to_send():
                sent = Sent(self.now, address, destination, data, False)
                if self.lose(sent):
                    sent = Sent(self.now, address, destination, data, True)
                else:
                    item = (self.now + self.latency, next(self._order), sent)
                    heapq.heappush(self._in_flight, item)
                self.log.append(sent)

    def step(self, until: float) -> bool:
        """Do the next thing that happens by ``until``; False if nothing does."""
        self.collect()
        timers = [(t, a) for a, n in self._nodes.items() if (t := n.get_timer()) is not None]
        next_timer = min(timers, default=None)
        next_arrival = self._in_flight[0][0] if self._in_flight else None
        candidates = [
            t for t in (next_arrival, next_timer[0] if next_timer else None) if t is not None
        ]
        if not candidates or min(candidates) > until:
            return False
        moment = max(self.now, min(candidates))
        self._idle_steps = self._idle_steps + 1 if moment == self.now else 0
        if self._idle_steps > 100_000:
            raise RuntimeError(f"a node's timer does not move on (at {self.now})")
        self.now = moment
        while self._in_flight and self._in_flight[0][0] <= self.now:
            _, _, sent = heapq.heappop(self._in_flight)
            node = self._nodes.get(sent.destination)
            if node is not None:
                node.receive_datagram(sent.data, sent.source, self.now)
        for deadline, address in timers:
            node = self._nodes.get(address)
            if deadline <= self.now and node is not None:
                node.handle_timer(self.now)
        self.collect()
        return True

    def run(self, until: Callable[[], bool] | None = None, *, timeout: float = 60.0) -> None:
        """Run until ``until()`` holds (checked after every step) or ``timeout`` seconds
        of network time pass; raise TimeoutError in the first case when it never holds."""
        end = self.now + timeout
        while until is None or not until():
            if not self.step(end):
                if until is None:
                    self.now = max(self.now, end)
                    return
                self.now = end
                raise TimeoutError(f"not done after {timeout} s of network time")

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` pass, doing everything that falls due meanwhile."""
        self.run(timeout=seconds)


class ScriptedPeer:
    """A node that records what it receives and sends what the test queues: a far end
    that does by hand what a real one would not."""

    def __init__(self) -> None:
        self.received: list[tuple[bytes, Address]] = []
        self._outgoing: list[tuple[bytes, Address]] = []

    def send(self, data: bytes, destination: Address) -> None:
        """Queue ``data`` for ``destination`` (it leaves at the network's next step)."""
        self._outgoing.append((data, destination))

    def receive_datagram(self, data: bytes, source: Address, now: float) -> None:
        self.received.append((data, source))

    def handle_timer(self, now: float) -> None:
        pass

    def get_timer(self) -> float | None:
        return None

    def datagrams_to_send(self) -> list[tuple[bytes, Address]]:
        out, self._outgoing = self._outgoing, []
        return out


def outside_address() -> str | None:
    """An IPv4 address of this machine that is not loopback: connecting from it to a
    server of this machine makes a peer that is not loopback, without leaving the machine
    (a UDP connect sends nothing). None when the machine has no such address."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))
            ip = str(s.getsockname()[0])
        except OSError:
            return None
    return None if ip.startswith("127.") else ip
