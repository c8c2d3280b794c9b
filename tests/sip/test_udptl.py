from __future__ import annotations

import contextlib
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from faxline.sip.errors import UdptlParseError
from faxline.sip.udptl import FecInfo, Ifp, IfpLost, UdptlPacket, UdptlReceiver, UdptlSender

# Captured-style datagrams: T.38 indicator IFPs (no-signal 0x00, CNG 0x02, CED 0x04).
FIRST = bytes.fromhex("0000 01 00 00 00")
THIRD = bytes.fromhex("0002 01 04 00 02 01 02 01 00")
# A t30-data IFP (V.21 HDLC) of 130 octets needs the two-octet length form.
LONG_IFP = bytes([0xC0, 0x01]) + bytes(range(128))
LONG = bytes.fromhex("0105 8082") + LONG_IFP + bytes.fromhex("00 01 01 04")
FEC = bytes.fromhex("0007 01 04 80 01 03 02 02 aa bb 01 cc")


def test_captured_packets() -> None:
    first = UdptlPacket.parse(FIRST)
    assert (first.sequence, first.primary, first.secondary) == (0, b"\x00", [])
    third = UdptlPacket.parse(THIRD)
    assert (third.sequence, third.primary, third.secondary) == (2, b"\x04", [b"\x02", b"\x00"])
    long = UdptlPacket.parse(LONG)
    assert long.sequence == 0x105 and long.primary == LONG_IFP and long.secondary == [b"\x04"]
    fec = UdptlPacket.parse(FEC)
    assert fec.fec == FecInfo(3, (b"\xaa\xbb", b"\xcc"))
    for data in (FIRST, THIRD, LONG, FEC):
        assert bytes(UdptlPacket.parse(data)) == data


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"\x00", "truncated"),
        (bytes.fromhex("0000 00 00 00"), "empty primary"),
        (bytes.fromhex("0000 01 00 40"), "choice"),
        (bytes.fromhex("0000 01 00 00 01 00"), "empty secondary"),
        (FIRST + b"\x00", "junk"),
        (bytes.fromhex("0000 c1 00"), "fragmented"),
        (bytes.fromhex("0000 05 00"), "truncated"),
        (bytes.fromhex("0000 01 00 80 00 00"), "fec-npackets"),
    ],
)
def test_malformed_packets(data: bytes, match: str) -> None:
    with pytest.raises(UdptlParseError, match=match):
        UdptlPacket.parse(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=60))
def test_arbitrary_bytes_raise_only_parse_errors(data: bytes) -> None:
    with contextlib.suppress(UdptlParseError):
        UdptlPacket.parse(data)


_ifps = st.binary(min_size=1, max_size=300)


@settings(max_examples=200, deadline=None)
@given(
    st.integers(0, 0xFFFF),
    _ifps,
    st.lists(_ifps, max_size=5),
    st.none()
    | st.tuples(st.integers(-(2**31), 2**31 - 1), st.lists(st.binary(max_size=50), max_size=3)),
)
def test_round_trip(
    seq: int, primary: bytes, secondary: list[bytes], fec: tuple[int, list[bytes]] | None
) -> None:
    if fec is None:
        packet = UdptlPacket(seq, primary, secondary)
    else:
        packet = UdptlPacket(seq, primary, [], FecInfo(fec[0], tuple(fec[1])))
    assert UdptlPacket.parse(bytes(packet)) == packet


def test_sender_adds_redundancy_newest_first() -> None:
    sender = UdptlSender(redundancy=2, sequence=65535)
    packets = [UdptlPacket.parse(sender.send(bytes([i]))) for i in range(1, 5)]
    assert [p.sequence for p in packets] == [65535, 0, 1, 2]
    assert [p.secondary for p in packets] == [[], [b"\x01"], [b"\x02", b"\x01"], [b"\x03", b"\x02"]]


def test_sender_trims_redundancy_to_max_datagram() -> None:
    sender = UdptlSender(redundancy=3, max_datagram=120)
    for _ in range(3):
        sender.send(bytes(50))
    data = sender.send(bytes(50))
    assert len(data) <= 120
    assert len(UdptlPacket.parse(data).secondary) == 1


def _deliver(datagrams: list[bytes], receiver: UdptlReceiver) -> list[Ifp | IfpLost]:
    out: list[Ifp | IfpLost] = []
    for data in datagrams:
        out += receiver.push(UdptlPacket.parse(data))
    return out + receiver.flush()


def test_receiver_recovers_a_lost_packet_from_redundancy() -> None:
    sender = UdptlSender(redundancy=2)
    datagrams = [sender.send(bytes([i + 1])) for i in range(6)]
    receiver = UdptlReceiver()
    out = _deliver([d for i, d in enumerate(datagrams) if i not in (2, 3)], receiver)
    assert [(e.sequence, e.data, e.recovered) for e in out if isinstance(e, Ifp)] == [
        (0, b"\x01", False),
        (1, b"\x02", False),
        (2, b"\x03", True),
        (3, b"\x04", True),
        (4, b"\x05", False),
        (5, b"\x06", False),
    ]
    assert receiver.recovered == 2 and receiver.lost == 0


def test_receiver_recovers_the_first_packet_and_reports_a_burst() -> None:
    sender = UdptlSender(redundancy=1)
    datagrams = [sender.send(bytes([i + 1])) for i in range(8)]
    receiver = UdptlReceiver(hold=2)
    out = _deliver([datagrams[1], datagrams[5], datagrams[6], datagrams[7]], receiver)
    assert out[0] == Ifp(0, b"\x01", recovered=True)
    assert IfpLost(2, 2) in out
    assert [e.sequence for e in out if isinstance(e, Ifp)] == [0, 1, 4, 5, 6, 7]


@pytest.mark.parametrize(("loss", "redundancy"), [(0.10, 2), (0.25, 3)])
def test_receiver_under_random_loss_and_reordering(loss: float, redundancy: int) -> None:
    rng = random.Random(int(loss * 100))
    count = 3000
    sender = UdptlSender(redundancy=redundancy, sequence=64000)  # wraps during the test
    ifps = [rng.randbytes(rng.randint(1, 40)) for _ in range(count)]
    datagrams = [sender.send(ifp) for ifp in ifps]
    arrived = [rng.random() > loss for _ in range(count)]
    stream = [d for d, ok in zip(datagrams, arrived, strict=True) if ok]
    # Reorder neighbours on the wire (at most one place, as a real network does).
    for i in range(len(stream) - 1):
        a, b = (UdptlPacket.parse(d).sequence for d in stream[i : i + 2])
        if (b - a) & 0xFFFF == 1 and rng.random() < 0.2:
            stream[i], stream[i + 1] = stream[i + 1], stream[i]
    receiver = UdptlReceiver(hold=redundancy + 2)
    out = _deliver(stream, receiver)
    first_arrival = arrived.index(True)
    # An IFP is recoverable when its own packet or one of the next `redundancy` arrived.
    recoverable = [
        any(arrived[i : i + redundancy + 1])
        for i in range(max(0, first_arrival - redundancy), count)
    ]
    delivered = [e for e in out if isinstance(e, Ifp)]
    start = max(0, first_arrival - redundancy)
    assert [e.sequence - 64000 for e in delivered] == [
        start + i for i, ok in enumerate(recoverable) if ok
    ]
    assert all(e.data == ifps[e.sequence - 64000] for e in delivered)
    assert receiver.lost == recoverable.count(False)
    # Swapped neighbours also deliver from the redundant copy before the primary arrives.
    assert receiver.recovered >= sum(
        1 for i in range(start, count) if not arrived[i] and recoverable[i - start]
    )
    assert receiver.recovered > 0.8 * count * loss


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_every_ifp_at_most_once_and_in_order(data: st.DataObject) -> None:
    count = data.draw(st.integers(1, 60))
    sender = UdptlSender(redundancy=data.draw(st.integers(0, 4)))
    datagrams = [sender.send(bytes([i % 256, i // 256 + 1])) for i in range(count)]
    kept = data.draw(st.lists(st.sampled_from(datagrams), max_size=2 * count))
    receiver = UdptlReceiver(hold=data.draw(st.integers(1, 6)))
    out = _deliver(kept, receiver)
    covered: list[int] = []
    for event in out:
        if isinstance(event, Ifp):
            assert event.data == datagrams[event.sequence][3 : 3 + datagrams[event.sequence][2]]
            covered.append(event.sequence)
        else:
            covered.extend(range(event.sequence, event.sequence + event.count))
    assert covered == sorted(set(covered))
    if covered:
        assert covered == list(range(covered[0], covered[-1] + 1))
