from __future__ import annotations

import contextlib
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from faxline.sip.errors import RtpParseError
from faxline.sip.rtp import Frame, JitterBuffer, Lost, RtpPacket, RtpSender
from faxline.sip.sequence import SequenceUnwrapper

# A PCMU packet as sent by Asterisk: marker set on the first packet, 160 bytes of 0xff.
PCMU_PACKET = bytes.fromhex("8080 43a1 0001 f5c0 5e1d 2c3b") + b"\xff" * 160
# PCMA with one CSRC, a header extension and 4 bytes of padding.
PCMA_EXTENDED = (
    bytes.fromhex("b108 0010 0000 00a0 1234 5678 cafe babe bede 0001 1122 3344")
    + b"\xd5" * 160
    + bytes.fromhex("0000 0004")
)


def test_pcmu_packet() -> None:
    packet = RtpPacket.parse(PCMU_PACKET)
    assert packet.payload_type == 0 and packet.marker
    assert packet.sequence_number == 0x43A1 and packet.timestamp == 0x1F5C0
    assert packet.ssrc == 0x5E1D2C3B and len(packet.payload) == 160
    assert bytes(packet) == PCMU_PACKET


def test_packet_with_csrc_extension_and_padding() -> None:
    packet = RtpPacket.parse(PCMA_EXTENDED)
    assert packet.payload_type == 8 and not packet.marker
    assert packet.csrc == [0xCAFEBABE]
    assert packet.extension_profile == 0xBEDE and packet.extension == bytes.fromhex("11223344")
    assert packet.padding_size == 4 and packet.payload == b"\xd5" * 160
    assert bytes(packet) == PCMA_EXTENDED


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (PCMU_PACKET[:11], "too short"),
        (b"\x40" + PCMU_PACKET[1:], "version"),
        (bytes.fromhex("80c8") + PCMU_PACKET[2:], "RTCP"),
        (bytes.fromhex("83") + PCMU_PACKET[1:12], "CSRC"),
        (bytes.fromhex("90") + PCMU_PACKET[1:12] + b"\x00\x01\x00\x05", "extension"),
        (bytes.fromhex("a0") + PCMU_PACKET[1:-1] + b"\xff", "padding"),
        (bytes.fromhex("a0") + PCMU_PACKET[1:-1] + b"\x00", "padding"),
    ],
)
def test_malformed_packets(data: bytes, match: str) -> None:
    with pytest.raises(RtpParseError, match=match):
        RtpPacket.parse(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80))
def test_arbitrary_bytes_raise_only_parse_errors(data: bytes) -> None:
    with contextlib.suppress(RtpParseError):
        RtpPacket.parse(data)


@settings(max_examples=200, deadline=None)
@given(
    st.integers(0, 127).filter(lambda pt: not 64 <= pt <= 95),
    st.integers(0, 0xFFFF),
    st.integers(0, 0xFFFFFFFF),
    st.integers(0, 0xFFFFFFFF),
    st.binary(max_size=200),
    st.booleans(),
    st.lists(st.integers(0, 0xFFFFFFFF), max_size=15),
    st.none() | st.integers(0, 0xFFFF),
    st.integers(0, 8).map(lambda n: bytes(4 * n)),
    st.integers(0, 255),
)
def test_round_trip(
    pt: int,
    seq: int,
    ts: int,
    ssrc: int,
    payload: bytes,
    marker: bool,
    csrc: list[int],
    profile: int | None,
    extension: bytes,
    padding: int,
) -> None:
    packet = RtpPacket(
        pt,
        seq,
        ts,
        ssrc,
        payload,
        marker,
        csrc,
        profile,
        extension if profile is not None else b"",
        padding,
    )
    assert RtpPacket.parse(bytes(packet)) == packet


def test_sequence_unwrapper() -> None:
    unwrapper = SequenceUnwrapper()
    values = [65533, 65534, 65535, 0, 65535, 1, 2]
    assert [unwrapper.unwrap(v) for v in values] == [
        65533,
        65534,
        65535,
        65536,
        65535,
        65537,
        65538,
    ]


def test_sender_counts_and_wraps() -> None:
    sender = RtpSender(payload_type=8, ssrc=7, sequence=65535, timestamp=2**32 - 160)
    first, second = sender.packet(b"\xd5" * 160), sender.packet(b"\xd5" * 160)
    assert first.marker and not second.marker
    assert (first.sequence_number, second.sequence_number) == (65535, 0)
    assert (first.timestamp, second.timestamp) == (2**32 - 160, 0)


def _stream(count: int, start_seq: int = 65530) -> list[RtpPacket]:
    sender = RtpSender(payload_type=0, ssrc=1, sequence=start_seq, timestamp=1000)
    return [sender.packet(bytes([i % 256]) * 160) for i in range(count)]


def test_jitter_buffer_reorders_and_reports_gaps() -> None:
    packets = _stream(10)
    buffer = JitterBuffer(depth=3)
    order = [0, 2, 1, 3, 5, 6, 7, 8, 9]  # 4 is lost, 1/2 swapped
    out: list[Frame | Lost] = []
    for i in order:
        out += buffer.push(packets[i])
    out += buffer.flush()
    assert [type(e).__name__ for e in out] == ["Frame"] * 4 + ["Lost"] + ["Frame"] * 5
    lost = out[4]
    assert isinstance(lost, Lost) and lost.count == 1 and lost.samples == 160
    assert lost.sequence == 65534
    frames = [e for e in out if isinstance(e, Frame)]
    assert [f.payload[0] for f in frames] == [0, 1, 2, 3, 5, 6, 7, 8, 9]
    assert [f.sequence for f in frames] == sorted(f.sequence for f in frames)


def test_jitter_buffer_drops_late_and_duplicate_packets() -> None:
    packets = _stream(8)
    buffer = JitterBuffer(depth=2)
    out: list[Frame | Lost] = []
    for i in [0, 2, 2, 3, 4, 1, 5, 6, 7]:
        out += buffer.push(packets[i])
    out += buffer.flush()
    assert buffer.duplicates == 1 and buffer.late == 1 and buffer.lost == 1
    assert sum(isinstance(e, Frame) for e in out) == 7


def test_jitter_buffer_under_random_loss_accounts_for_every_packet() -> None:
    rng = random.Random(7)
    packets = _stream(2000)
    # Local reordering by one place, then 20% loss.
    for i in range(3, len(packets) - 1, 7):
        packets[i], packets[i + 1] = packets[i + 1], packets[i]
    arrivals = [p for p in packets if rng.random() > 0.2]
    buffer = JitterBuffer(depth=3)
    out: list[Frame | Lost] = []
    for packet in arrivals:
        out += buffer.push(packet)
    out += buffer.flush()
    frames = [e for e in out if isinstance(e, Frame)]
    lost = sum(e.count for e in out if isinstance(e, Lost))
    samples = sum(len(e.payload) for e in frames) + sum(
        e.samples for e in out if isinstance(e, Lost)
    )
    assert len(frames) == len(arrivals) and buffer.late == 0
    assert len(frames) + lost == frames[-1].sequence - frames[0].sequence + 1
    assert samples == 160 * (len(frames) + lost)
    assert [f.sequence for f in frames] == sorted({f.sequence for f in frames})


def test_new_ssrc_restarts_the_buffer() -> None:
    buffer = JitterBuffer()
    out = buffer.push(_stream(1)[0])
    other = RtpSender(payload_type=0, ssrc=2, sequence=10, timestamp=0).packet(b"\x00" * 160)
    out += buffer.push(other)
    assert [e.sequence for e in out if isinstance(e, Frame)] == [65530, 10]
