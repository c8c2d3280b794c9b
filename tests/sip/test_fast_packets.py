"""The media path's fast packet code gives exactly what the general code gives.

RTP datagrams built by :meth:`RtpSender.datagram` (one struct call, no packet object) and
UDPTL datagrams joined from framed IFPs by :class:`UdptlSender` must be byte for byte the
encodings of the packets the general classes describe; the short-form parsers must agree
with the general ones on every input they accept.
"""

from __future__ import annotations

from collections import deque

from hypothesis import given
from hypothesis import strategies as st

from faxline.sip.errors import UdptlParseError
from faxline.sip.rtp import RtpPacket, RtpSender
from faxline.sip.udptl import UdptlPacket, UdptlSender, _parse_general, _parse_short

payloads = st.lists(
    st.tuples(st.binary(max_size=200), st.none() | st.integers(0, 2**32 - 1)), max_size=12
)


@given(
    st.integers(0, 127),
    st.integers(0, 2**32 - 1),
    st.integers(0, 2**16 - 1),
    st.integers(0, 2**32 - 1),
    payloads,
)
def test_rtp_datagrams_are_the_packets_bytes(
    payload_type: int,
    ssrc: int,
    sequence: int,
    timestamp: int,
    sends: list[tuple[bytes, int | None]],
) -> None:
    fast = RtpSender(payload_type, ssrc, sequence, timestamp)
    general = RtpSender(payload_type, ssrc, sequence, timestamp)
    for payload, samples in sends:
        assert fast.datagram(payload, samples) == bytes(general.packet(payload, samples))


@given(
    st.integers(0, 127),
    st.integers(0, 2**16 - 1),
    st.integers(0, 2**32 - 1),
    st.integers(0, 2**32 - 1),
    st.binary(max_size=200),
    st.booleans(),
)
def test_plain_rtp_packets_parse_as_built(
    payload_type: int, sequence: int, timestamp: int, ssrc: int, payload: bytes, marker: bool
) -> None:
    packet = RtpPacket(payload_type, sequence, timestamp, ssrc, payload, marker)
    data = bytes(packet)
    if 192 <= data[1] <= 223:  # looks like RTCP: refused by both paths
        return
    assert data[0] == 0x80  # the fast path's form
    assert RtpPacket.parse(data) == packet


def reference_send(
    history: deque[bytes], sequence: int, ifp: bytes, redundancy: int, max_datagram: int | None
) -> bytes:
    """The sender as it was: a packet object, trimmed and encoded again until it fits."""
    secondary = list(reversed(history)) if redundancy else []
    packet = UdptlPacket(sequence, ifp, secondary)
    data = bytes(packet)
    while max_datagram is not None and len(data) > max_datagram and secondary:
        secondary.pop()
        data = bytes(packet)
    if redundancy:
        history.append(ifp)
    return data


@given(
    st.integers(0, 5),
    st.none() | st.integers(1, 400),
    st.integers(0, 2**16 - 1),
    st.lists(st.binary(min_size=1, max_size=300), max_size=12),
)
def test_udptl_datagrams_are_the_packets_bytes(
    redundancy: int, max_datagram: int | None, sequence: int, ifps: list[bytes]
) -> None:
    sender = UdptlSender(redundancy, max_datagram=max_datagram, sequence=sequence)
    history: deque[bytes] = deque(maxlen=redundancy or None)
    for offset, ifp in enumerate(ifps):
        expected = reference_send(
            history, (sequence + offset) & 0xFFFF, ifp, redundancy, max_datagram
        )
        assert sender.send(ifp) == expected


def agrees(data: bytes) -> None:
    fast = _parse_short(data)
    if fast is None:
        return
    try:
        general = _parse_general(data)
    except UdptlParseError as exc:
        raise AssertionError(f"the fast parser took what the general one refuses: {exc}") from exc
    assert fast == general


@given(st.binary(max_size=60))
def test_short_udptl_parser_agrees_on_arbitrary_bytes(data: bytes) -> None:
    agrees(data)


@given(
    st.integers(0, 2**16 - 1),
    st.binary(min_size=1, max_size=200),
    st.lists(st.binary(min_size=1, max_size=200), max_size=5),
    st.integers(-3, 3),
)
def test_short_udptl_parser_agrees_on_packets(
    sequence: int, primary: bytes, secondary: list[bytes], cut: int
) -> None:
    data = bytes(UdptlPacket(sequence, primary, secondary))
    agrees(data)
    agrees(data[: len(data) + cut] if cut < 0 else data + bytes(cut))
    assert UdptlPacket.parse(data) == UdptlPacket(sequence, primary, secondary)
    if len(primary) < 128 and all(len(ifp) < 128 for ifp in secondary):
        assert _parse_short(data) is not None  # the usual form takes the fast path
