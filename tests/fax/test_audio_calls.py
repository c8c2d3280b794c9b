"""Whole calls over the in-process audio line (G.711 each way)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from faxpages import Page, assert_pages_equal

from faxline.documents.faxtiff import read_fax_tiff
from faxline.fax import (
    Codec,
    Completed,
    Ending,
    FaxJob,
    Impairments,
    PageTransferred,
    PhaseB,
    Transport,
    run_call,
)

T30_ERR_NORESSUPPORT = 11
T30_ERR_CALLDROPPED = 49


@pytest.mark.parametrize("codec", list(Codec))
def test_three_pages_arrive_identical_with_ecm(
    codec: Codec, fine_tiff: Path, pages: list[Page], tmp_path: Path
) -> None:
    received = tmp_path / "in.tif"
    result = run_call(FaxJob.send(fine_tiff), FaxJob.receive(received), codec=codec)

    assert result.ending is Ending.COMPLETED
    assert result.transport is Transport.AUDIO
    for side in (result.sender, result.receiver):
        assert side.success and side.completion_code == 0 and side.completion_text == "OK"
        assert side.pages == 3 and side.ecm and side.bad_rows == 0 and side.clean
        assert side.bit_rate == 14400
    assert 0 < result.sender.duration_s <= result.duration_s
    assert_pages_equal(received, pages)


def test_events_tell_the_story_of_the_call(fine_tiff: Path, tmp_path: Path) -> None:
    result = run_call(FaxJob.send(fine_tiff), FaxJob.receive(tmp_path / "in.tif"))
    for events in (result.sender_events, result.receiver_events):
        assert isinstance(events[0], PhaseB)
        assert [e.page for e in events if isinstance(e, PageTransferred)] == [1, 2, 3]
        assert isinstance(events[-1], Completed)
    sender_b, receiver_b = result.sender_events[0], result.receiver_events[0]
    assert isinstance(sender_b, PhaseB) and sender_b.frame == "DIS"
    assert isinstance(receiver_b, PhaseB) and receiver_b.frame == "DCS"
    assert receiver_b.bit_rate == 14400 and receiver_b.ecm
    last = result.receiver_events[-1]
    assert isinstance(last, Completed) and last.result == result.receiver


def test_idents_and_header_line_pass_through(
    fine_tiff: Path, pages: list[Page], tmp_path: Path
) -> None:
    received = tmp_path / "in.tif"
    result = run_call(
        FaxJob.send(fine_tiff, ident="+1 555 0100", header="Acme Ltd invoices"),
        FaxJob.receive(received, ident="+44 20 7946 0000"),
    )
    assert result.sender.success
    assert result.sender.local_ident == "+1 555 0100"
    assert result.sender.remote_ident == "+44 20 7946 0000"
    assert result.receiver.remote_ident == "+1 555 0100"
    # SpanDSP adds the header as extra rows above each page; below them, the page is intact.
    header_rows = read_fax_tiff(received)[0].shape[0] - pages[0].shape[0]
    assert header_rows > 0
    top = read_fax_tiff(received)[0][:header_rows]
    assert top.any(), "the header line should print something"
    assert_pages_equal(received, pages, header_rows=header_rows)


def test_header_text_is_what_gets_printed(fine_tiff: Path, tmp_path: Path) -> None:
    # SpanDSP 0.0.6 prints "date  time  info  ident  page" in a 16-pixel-wide font; the
    # info field starts at column 384 and is followed by the ident field at 1200.
    def info_field(text: str) -> np.ndarray:
        path = tmp_path / f"{text[0]}.tif"
        run_call(FaxJob.send(fine_tiff, header=text), FaxJob.receive(path))
        page = read_fax_tiff(path)[0]
        return page[: page.shape[0] - 2200, 384:1184]

    first, second = info_field("AAAAAAAAAA"), info_field("WWWWWWWWWW")
    for field in (first, second):
        assert field[:, : 16 * 10].any() and not field[:, 16 * 10 :].any()
    assert not np.array_equal(first, second)
    # The same letter prints the same glyph ten times over.
    glyphs = first[:, : 16 * 10].reshape(first.shape[0], 10, 16)
    assert all(np.array_equal(glyphs[:, 0], glyphs[:, i]) for i in range(10))


def test_without_ecm_a_lossy_line_reports_bad_rows(fine_tiff: Path, tmp_path: Path) -> None:
    # 0.2 % of 20 ms blocks lost, seed 1: the handshake survives, page data is hit.
    result = run_call(
        FaxJob.send(fine_tiff, ecm=False),
        FaxJob.receive(tmp_path / "in.tif", ecm=False),
        impairments=Impairments(lost_audio_blocks=0.002, seed=1),
    )
    assert result.lost_blocks > 0
    receiver = result.receiver
    assert receiver.success and receiver.pages == 3 and not receiver.ecm
    page_bad_rows = [e.bad_rows for e in result.receiver_events if isinstance(e, PageTransferred)]
    assert receiver.bad_rows == sum(page_bad_rows) > 0
    assert not receiver.clean


def test_lossy_line_is_deterministic(fine_tiff: Path, tmp_path: Path) -> None:
    def once() -> tuple[int, int, float]:
        r = run_call(
            FaxJob.send(fine_tiff, ecm=False),
            FaxJob.receive(tmp_path / "in.tif", ecm=False),
            impairments=Impairments(lost_audio_blocks=0.002, seed=1),
        )
        return r.lost_blocks, r.receiver.bad_rows, r.duration_s

    assert once() == once()


def test_with_ecm_lost_blocks_are_repaired(
    fine_tiff: Path, pages: list[Page], tmp_path: Path
) -> None:
    received = tmp_path / "in.tif"
    result = run_call(
        FaxJob.send(fine_tiff),
        FaxJob.receive(received),
        impairments=Impairments(lost_audio_blocks=0.002, seed=1),
    )
    assert result.lost_blocks > 0
    assert result.sender.success and result.receiver.clean
    assert_pages_equal(received, pages)


def test_hang_up_after_page_one(fine_tiff: Path, tmp_path: Path) -> None:
    result = run_call(
        FaxJob.send(fine_tiff),
        FaxJob.receive(tmp_path / "in.tif"),
        impairments=Impairments(hangup_after_page=1),
    )
    assert result.ending is Ending.HANGUP_AFTER_PAGE
    assert not result.sender.success
    assert result.sender.completion_code == T30_ERR_CALLDROPPED
    assert result.sender.completion_text == "The call dropped prematurely"
    assert result.sender.pages == 1
    assert result.receiver.pages == 1 and not result.receiver.success


def test_receiver_refusing_fine_fails_a_fine_document(fine_tiff: Path, tmp_path: Path) -> None:
    # SpanDSP 0.0.6 does not convert: the sender gives up in phase B with code 11.
    result = run_call(FaxJob.send(fine_tiff), FaxJob.receive(tmp_path / "in.tif", fine=False))
    assert result.ending is Ending.COMPLETED
    assert result.sender.completion_code == T30_ERR_NORESSUPPORT
    assert result.sender.completion_text == "Far end cannot receive at the resolution of the image"
    assert result.sender.pages == 0 and not result.receiver.success


def test_receiver_refusing_fine_takes_standard(standard_tiff: Path, tmp_path: Path) -> None:
    result = run_call(FaxJob.send(standard_tiff), FaxJob.receive(tmp_path / "in.tif", fine=False))
    assert result.sender.success and result.receiver.pages == 1


def test_maximum_duration_drops_the_call(fine_tiff: Path, tmp_path: Path) -> None:
    result = run_call(
        FaxJob.send(fine_tiff), FaxJob.receive(tmp_path / "in.tif"), max_duration_s=10.0
    )
    assert result.ending is Ending.MAX_DURATION
    assert result.duration_s == pytest.approx(10.0)
    assert result.sender.completion_code == T30_ERR_CALLDROPPED
    assert result.receiver.completion_code == T30_ERR_CALLDROPPED


def test_hang_up_after_the_last_page_is_still_a_success(fine_tiff: Path, tmp_path: Path) -> None:
    # The sender had MCF for page 3: SpanDSP 0.0.6 counts a drop before DCN as done.
    result = run_call(
        FaxJob.send(fine_tiff),
        FaxJob.receive(tmp_path / "in.tif"),
        impairments=Impairments(hangup_after_page=3),
    )
    assert result.sender.success and result.sender.pages == 3
    assert result.receiver.success and result.receiver.pages == 3
