"""The lossy UDP relay (faxline.testing.relay) on real loopback sockets."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from faxline.testing.relay import Direction, Loss, LossyRelay


class Peer(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.got: asyncio.Queue[tuple[bytes, tuple[str, int]]] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str | Any, ...]) -> None:
        self.got.put_nowait((data, (addr[0], addr[1])))

    @property
    def address(self) -> tuple[str, int]:
        assert self.transport is not None
        host, port = self.transport.get_extra_info("sockname")[:2]
        return host, port


async def peer() -> Peer:
    _, protocol = await asyncio.get_running_loop().create_datagram_endpoint(
        Peer, local_addr=("127.0.0.1", 0)
    )
    return protocol


def test_loss_is_seeded_and_near_its_fraction() -> None:
    a, b = Loss(0.05, seed=3), Loss(0.05, seed=3)
    pattern = [a.drop() for _ in range(10_000)]
    assert pattern == [b.drop() for _ in range(10_000)]
    assert 400 < sum(pattern) < 600
    assert pattern != [Loss(0.05, seed=4).drop() for _ in range(10_000)]
    assert not any(Loss(0.0, seed=1).drop() for _ in range(1000))
    with pytest.raises(ValueError, match="between 0 and 1"):
        Loss(1.5, seed=0)


def expected_survivors(count: int, loss: float, seed: int) -> list[int]:
    pattern = Loss(loss, seed)
    return [n for n in range(count) if not pattern.drop()]


async def lockstep(
    sender: Peer, to: tuple[str, int], receiver: Peer, prefix: bytes, survivors: list[int]
) -> list[tuple[bytes, tuple[str, int]]]:
    """Send 300 datagrams one at a time, awaiting each one that should get through (a burst
    would overflow the relay's socket buffer, a loss that is not the relay's)."""
    assert sender.transport is not None
    got = []
    for n in range(300):
        sender.transport.sendto(prefix + b"%d" % n, to)
        if n in survivors:
            got.append(await asyncio.wait_for(receiver.got.get(), 5))
    return got


def test_relays_both_ways_drops_the_seeded_share_and_counts_it() -> None:
    async def main() -> None:
        alice, bob = await peer(), await peer()
        relay = await LossyRelay.open(peer_b=bob.address, loss=0.1, seed=7)
        try:
            assert alice.transport is not None and bob.transport is not None
            survivors = expected_survivors(300, 0.1, 7)
            got = await lockstep(alice, relay.address_a, bob, b"a", survivors)
            assert [data for data, _ in got] == [b"a%d" % n for n in survivors]
            assert {source for _, source in got} == {relay.address_b}
            # Side A's peer was latched from alice's first datagram; bob answers through B.
            back = expected_survivors(300, 0.1, 8)  # the other direction has its own pattern
            got = await lockstep(bob, relay.address_b, alice, b"b", back)
            assert [data for data, _ in got] == [b"b%d" % n for n in back]
            assert {source for _, source in got} == {relay.address_a}
            await asyncio.wait_for(relay.settled(Direction.A_TO_B, 300), 5)
            await asyncio.wait_for(relay.settled(Direction.B_TO_A, 300), 5)
            ab, ba = relay.stats[Direction.A_TO_B], relay.stats[Direction.B_TO_A]
            assert (ab.forwarded, ab.dropped) == (len(survivors), 300 - len(survivors))
            assert (ba.forwarded, ba.dropped) == (len(back), 300 - len(back))
            assert relay.dropped == 600 - len(survivors) - len(back) > 0
        finally:
            relay.close()
            for p in (alice, bob):
                assert p.transport is not None
                p.transport.close()

    asyncio.run(asyncio.wait_for(main(), 20))


def test_rewrite_hook_changes_or_swallows_datagrams() -> None:
    async def upper(direction: Direction, data: bytes) -> bytes | None:
        if data == b"raise":
            raise ValueError("a bug in the hook")
        return None if data == b"drop me" else data.upper() + direction.value.encode()

    async def main() -> None:
        alice, bob = await peer(), await peer()
        relay = await LossyRelay.open(peer_a=alice.address, peer_b=bob.address, rewrite=upper)
        try:
            assert alice.transport is not None and bob.transport is not None
            alice.transport.sendto(b"drop me", relay.address_a)
            alice.transport.sendto(b"raise", relay.address_a)
            alice.transport.sendto(b"hello", relay.address_a)
            assert (await asyncio.wait_for(bob.got.get(), 5))[0] == b"HELLOa->b"
            bob.transport.sendto(b"hi", relay.address_b)
            assert (await asyncio.wait_for(alice.got.get(), 5))[0] == b"HIb->a"
            assert relay.stats[Direction.A_TO_B].swallowed == 2
            assert [str(e) for e in relay.errors] == ["a bug in the hook"]
            assert relay.forwarded == 2 and relay.dropped == 0
        finally:
            relay.close()
            for p in (alice, bob):
                assert p.transport is not None
                p.transport.close()

    asyncio.run(asyncio.wait_for(main(), 20))
