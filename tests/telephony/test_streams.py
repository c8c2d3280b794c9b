"""The sans-I/O media streams and the watchdog, with time stepped by hand (no sockets)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from faxline.fax import AudioFaxSession, FaxJob, T38FaxSession
from faxline.sip.negotiation import PCMA
from faxline.sip.rtp import RtpPacket
from faxline.sip.sdp import T38Options
from faxline.telephony.clock import SpacingStats
from faxline.telephony.streams import AudioStream, T38Stream, Watchdog, is_image_data
from tests.fax.faxpages import Page, assert_pages_equal

Stream = AudioStream | T38Stream


def carry(
    a: Stream, b: Stream, *, lose: float, seed: int, junk: bytes, seconds: float = 120.0
) -> int:
    """Tick both streams every 20 ms of simulated time, losing datagrams at random.

    Each direction also gets ``junk`` once a second. Returns the datagrams lost.
    """
    rng = random.Random(seed)
    lost = 0
    now = 0.0
    ended_at: float | None = None
    while now < seconds:
        now += 0.02
        for source, target in ((a, b), (b, a)):
            datagrams = source.tick(now)
            if rng.random() < 0.1 and len(datagrams) > 1:
                datagrams.reverse()  # a little reordering as well
            for data in datagrams:
                if rng.random() < lose:
                    lost += 1
                else:
                    target.receive(data, now)
            if round(now * 50) % 50 == 0:
                assert not target.receive(junk, now)
        sessions = [s.session for s in (a, b)]
        assert sessions[0] is not None and sessions[1] is not None
        if any(s.finished for s in sessions):
            ended_at = now if ended_at is None else ended_at
            if all(s.finished for s in sessions) or now - ended_at > 5.0:
                break
    for stream in (a, b):
        assert stream.session is not None
        stream.session.hangup()
    return lost


def test_g711_pcma_with_loss_and_junk(
    one_page: list[Page], one_page_tiff: Path, tmp_path: Path
) -> None:
    received = tmp_path / "in.tif"
    # ECM repairs lost blocks in the page; a block lost in a V.21 control frame can
    # still fail T.30 in SpanDSP 0.0.6 (as on faxline.fax.line), hence a fixed seed.
    with (
        AudioFaxSession(FaxJob.send(one_page_tiff), calling=True) as tx,
        AudioFaxSession(FaxJob.receive(received), calling=False) as rx,
    ):
        a = AudioStream(tx, payload_type=PCMA, ssrc=1, sequence=65500, timestamp=0, now=0.0)
        b = AudioStream(rx, payload_type=PCMA, ssrc=2, sequence=7, timestamp=99, now=0.0)
        lost = carry(a, b, lose=0.002, seed=1, junk=b"\x80\x08\x00")
        assert tx.result is not None and rx.result is not None
        assert tx.result.success and rx.result.success and rx.result.pages == 1
    assert lost > 0 and a.stats.lost + b.stats.lost == lost
    assert a.stats.malformed > 0 and b.stats.malformed > 0
    assert_pages_equal(received, one_page)


def test_t38_with_loss_is_repaired_by_redundancy(
    one_page: list[Page], one_page_tiff: Path, tmp_path: Path
) -> None:
    received = tmp_path / "in.tif"
    with (
        T38FaxSession(FaxJob.send(one_page_tiff), calling=True) as tx,
        T38FaxSession(FaxJob.receive(received), calling=False) as rx,
    ):
        options = T38Options(max_datagram=400)
        a = T38Stream(tx, remote=options, now=0.0)
        b = T38Stream(rx, remote=options, now=0.0)
        lost = carry(a, b, lose=0.15, seed=5, junk=b"\x00\x01\x09")
        assert tx.result is not None and rx.result is not None
        assert tx.result.success and rx.result.success and rx.result.pages == 1
    assert lost > 20 and a.stats.recovered + b.stats.recovered > 0
    assert a.stats.malformed > 0 and b.stats.malformed > 0
    assert_pages_equal(received, one_page)


def test_rtp_of_other_payload_types_is_ignored(one_page_tiff: Path) -> None:
    with AudioFaxSession(FaxJob.send(one_page_tiff)) as session:
        stream = AudioStream(session, payload_type=0, ssrc=1, sequence=0, timestamp=0, now=0.0)
        comfort_noise = RtpPacket(13, 1, 160, 5, b"\x40")
        assert stream.receive(bytes(comfort_noise), 0.01)
        assert stream.stats.ignored == 1 and stream.last_received is None
        assert len(stream.tick(0.02)) == 1


def test_watchdog_audio_and_max_duration(one_page_tiff: Path) -> None:
    with AudioFaxSession(FaxJob.send(one_page_tiff)) as session:
        stream = AudioStream(session, payload_type=0, ssrc=1, sequence=0, timestamp=0, now=10.0)
        dog = Watchdog(media_timeout_s=3.0, max_duration_s=60.0, now=10.0)
        assert dog.check(stream, 12.9) is None
        assert dog.check(stream, 13.0) == "media_timeout"  # nothing ever came
        stream.receive(bytes(RtpPacket(0, 1, 0, 5, b"\xff" * 160)), 13.5)
        assert dog.check(stream, 16.4) is None
        assert dog.check(stream, 16.5) == "media_timeout"
        dog.restart(20.0)
        assert dog.check(stream, 22.0) is None
        assert dog.check(None, 70.0) == "max_duration"


def test_watchdog_counts_our_own_t38_page_data(one_page_tiff: Path) -> None:
    with T38FaxSession(FaxJob.send(one_page_tiff)) as session:
        stream = T38Stream(session, remote=None, now=0.0)
        dog = Watchdog(media_timeout_s=3.0, max_duration_s=60.0, now=0.0)
        assert dog.check(stream, 7.9) is None  # T.30 may be silent for 6 s over T.38
        assert dog.check(stream, 8.0) == "media_timeout"
        stream.sending_data_at = 5.0  # as a tick that sent page data would set it
        assert dog.check(stream, 12.9) is None
        assert dog.check(stream, 13.0) == "media_timeout"


@pytest.mark.parametrize(
    ("ifp", "image"),
    [
        (b"\x00", False),  # indicator: no signal
        (b"\x02", False),  # indicator: CNG
        (b"\xc0\x01\x80\x00", False),  # V.21 HDLC data
        (b"\xc8\x01\x80\x00", True),  # V.27ter 4800 data
        (b"\xd6\x01\x80\x00", True),  # V.17 14400 data
    ],
)
def test_image_data_is_told_from_control(ifp: bytes, image: bool) -> None:
    assert is_image_data(ifp) is image


def test_spacing_stats_histogram() -> None:
    """The media clock's spacing jitter: |interval - tick| in 0.1 ms buckets, no samples kept."""
    stats = SpacingStats()
    assert stats.percentile_ms(0.99) == 0.0
    for _ in range(98):
        stats.add(0.00005)  # 0.05 ms early or late: first bucket
    stats.add(-0.0031)  # a pass 3.1 ms early counts as 3.1 ms
    stats.add(0.25)  # beyond 100 ms: the last bucket
    assert stats.total == 100
    assert stats.percentile_ms(0.5) == pytest.approx(0.1)
    assert stats.percentile_ms(0.99) == pytest.approx(3.2)
    assert stats.percentile_ms(1.0) == pytest.approx(100.0)
    assert stats.worst_ms == pytest.approx(250.0)
