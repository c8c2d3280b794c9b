"""Whole calls over the in-process T.38 line (IFP packets with sequence numbers)."""

from __future__ import annotations

from pathlib import Path

import pytest
from faxpages import Page, assert_pages_equal

from faxline.fax import (
    Call,
    Ending,
    FaxJob,
    IfpPacket,
    Impairments,
    Side,
    T38FaxSession,
    Transport,
    run_call,
)

T30_ERR_NORESSUPPORT = 11
T30_ERR_CALLDROPPED = 49


def test_three_pages_arrive_identical_with_ecm(
    fine_tiff: Path, pages: list[Page], tmp_path: Path
) -> None:
    received = tmp_path / "in.tif"
    result = run_call(
        FaxJob.send(fine_tiff, ident="+1 555 0100", header="Acme"),
        FaxJob.receive(received, ident="+1 555 0200"),
        transport=Transport.T38,
    )
    assert result.transport is Transport.T38 and result.ending is Ending.COMPLETED
    for side in (result.sender, result.receiver):
        assert side.success and side.pages == 3 and side.ecm and side.bad_rows == 0
    assert result.sender.remote_ident == "+1 555 0200"
    assert result.receiver.remote_ident == "+1 555 0100"
    assert_pages_equal(received, pages, header_rows=32)


def test_without_ecm_over_t38(fine_tiff: Path, pages: list[Page], tmp_path: Path) -> None:
    received = tmp_path / "in.tif"
    result = run_call(
        FaxJob.send(fine_tiff, ecm=False),
        FaxJob.receive(received, ecm=False),
        transport=Transport.T38,
    )
    assert result.sender.success and not result.sender.ecm and result.receiver.clean
    assert_pages_equal(received, pages)


def test_sequence_numbers_are_ours_and_count_up(fine_tiff: Path, tmp_path: Path) -> None:
    seen: dict[Side, list[IfpPacket]] = {Side.SENDER: [], Side.RECEIVER: []}

    def watch(side: Side, packet: IfpPacket) -> bool:
        seen[side].append(packet)
        return False  # lose nothing

    with (
        T38FaxSession(FaxJob.send(fine_tiff)) as tx,
        T38FaxSession(FaxJob.receive(tmp_path / "in.tif"), calling=False) as rx,
    ):
        result = Call(tx, rx, impairments=Impairments(drop_packet=watch)).run()
    assert result.sender.success
    for packets in seen.values():
        # The predicate is asked once per copy: sequence numbers repeat only across copies.
        distinct = [p.seq for i, p in enumerate(packets) if i == 0 or packets[i - 1] is not p]
        assert distinct == list(range(len(distinct)))
    # SpanDSP asks for several copies of some packets (its "count" is a redundancy request).
    assert any(p.copies > 1 for p in seen[Side.SENDER])


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_lost_packets_with_ecm_still_complete(
    seed: int, fine_tiff: Path, pages: list[Page], tmp_path: Path
) -> None:
    received = tmp_path / "in.tif"
    result = run_call(
        FaxJob.send(fine_tiff),
        FaxJob.receive(received),
        transport=Transport.T38,
        impairments=Impairments(lost_packets=0.1, seed=seed),
    )
    assert result.lost_packets > 0
    assert result.sender.success and result.receiver.clean
    assert_pages_equal(received, pages)


def test_explicit_predicate_drops_chosen_packets(
    fine_tiff: Path, pages: list[Page], tmp_path: Path
) -> None:
    # Lose every 7th packet the sender sends (all its copies); redundancy recovers them.
    received = tmp_path / "in.tif"
    result = run_call(
        FaxJob.send(fine_tiff),
        FaxJob.receive(received),
        transport=Transport.T38,
        impairments=Impairments(drop_packet=lambda side, p: side is Side.SENDER and p.seq % 7 == 3),
    )
    assert result.lost_packets > 0 and result.sender.success
    assert_pages_equal(received, pages)


def test_hang_up_after_page_one(fine_tiff: Path, tmp_path: Path) -> None:
    result = run_call(
        FaxJob.send(fine_tiff),
        FaxJob.receive(tmp_path / "in.tif"),
        transport=Transport.T38,
        impairments=Impairments(hangup_after_page=1),
    )
    assert result.ending is Ending.HANGUP_AFTER_PAGE
    assert not result.sender.success and result.sender.completion_code == T30_ERR_CALLDROPPED
    assert result.sender.pages == 1


def test_receiver_refusing_fine(fine_tiff: Path, tmp_path: Path) -> None:
    result = run_call(
        FaxJob.send(fine_tiff),
        FaxJob.receive(tmp_path / "in.tif", fine=False),
        transport=Transport.T38,
    )
    assert result.sender.completion_code == T30_ERR_NORESSUPPORT and result.sender.pages == 0


def test_malformed_packet_is_rejected_not_raised(tmp_path: Path) -> None:
    with T38FaxSession(FaxJob.receive(tmp_path / "in.tif"), calling=False) as session:
        assert session.receive_packet(IfpPacket(0, b"\xff\xff\xff\xff")) is False
        assert session.rejected_packets == 1
        assert session.receive_packet(IfpPacket(1, b"\x00")) is True  # indicator: no-signal


def test_packet_values_are_checked() -> None:
    with pytest.raises(ValueError, match="65535"):
        IfpPacket(65536, b"\x00")
    with pytest.raises(ValueError, match="empty"):
        IfpPacket(0, b"")
