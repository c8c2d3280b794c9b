"""Tests aimed at the known ways a SpanDSP binding crashes or lies.

Each test names the pitfall it guards against (see DESIGN.md, section 3).
"""

from __future__ import annotations

import ctypes
import gc
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from faxpages import Page, assert_pages_equal

from faxline.fax import (
    AudioFaxSession,
    Call,
    Completed,
    FaxEngineUnavailable,
    FaxEvent,
    FaxJob,
    FaxSession,
    FaxSessionClosed,
    Impairments,
    PageTransferred,
    T38FaxSession,
    _spandsp,
)

SESSION_TYPES = [AudioFaxSession, T38FaxSession]
SessionType = type[AudioFaxSession] | type[T38FaxSession]


def _pair(
    kind: SessionType, tiff: Path, received: Path, **options: object
) -> tuple[FaxSession, FaxSession]:
    # Built in a helper so that no frame but the sessions' own holds their callbacks.
    return kind(FaxJob.send(tiff), **options), kind(FaxJob.receive(received), calling=False)  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", SESSION_TYPES)
def test_callbacks_survive_garbage_collection_mid_call(
    kind: SessionType, fine_tiff: Path, pages: list[Page], tmp_path: Path
) -> None:
    """Pitfall: a collected ctypes callback (phase B/D/E, T.38 tx) crashes SpanDSP."""
    received = tmp_path / "in.tif"
    tx, rx = _pair(kind, fine_tiff, received)
    call = Call(tx, rx)
    steps = 0
    while call.step():
        steps += 1
        if steps % 250 == 0:
            gc.collect()
    result = call.result()
    assert result.sender.success and result.receiver.success
    tx.close()
    rx.close()
    assert_pages_equal(received, pages)


def test_closing_before_the_end_still_gives_a_result(fine_tiff: Path) -> None:
    session = AudioFaxSession(FaxJob.send(fine_tiff))
    session.close()
    result = session.hangup()
    assert result.completion_code == 49 and not result.success and result.pages == 0


@pytest.mark.parametrize("kind", SESSION_TYPES)
def test_free_after_completion_and_use_after_free(
    kind: SessionType, fine_tiff: Path, tmp_path: Path
) -> None:
    """Pitfall: freeing a state twice, or calling into a freed state."""
    tx, rx = _pair(kind, fine_tiff, tmp_path / "in.tif")
    result = Call(tx, rx).run()
    assert result.sender.success
    for session in (tx, rx):
        session.close()
        session.close()  # idempotent
        assert session.closed
        assert session.result is not None and session.result.success  # results outlive C
        assert session.hangup() == session.result
    with pytest.raises(FaxSessionClosed):
        if isinstance(tx, AudioFaxSession):
            tx.transmit_audio(160)
        else:
            assert isinstance(tx, T38FaxSession)
            tx.advance(160)
    del tx, rx
    gc.collect()


@pytest.mark.parametrize("kind", SESSION_TYPES)
def test_close_inside_an_event_hook_is_deferred(
    kind: SessionType, fine_tiff: Path, tmp_path: Path
) -> None:
    """Pitfall: freeing a state from inside its own callback (phase E) pulls the floor away."""
    closed_in_hook: list[bool] = []
    sessions: list[FaxSession] = []

    def hang_up_on_completion(event: FaxEvent) -> None:
        if isinstance(event, Completed):
            sessions[0].close()  # runs inside SpanDSP's phase E callback
            closed_in_hook.append(sessions[0].closed)

    tx = kind(FaxJob.send(fine_tiff), on_event=hang_up_on_completion)
    sessions.append(tx)
    rx = kind(FaxJob.receive(tmp_path / "in.tif"), calling=False)
    call = Call(tx, rx)
    while not tx.closed:
        call.step()
    assert closed_in_hook == [False]  # still alive inside the callback...
    assert tx.closed and tx.result is not None and tx.result.success  # ...freed right after
    rx.close()


def test_an_exception_in_an_event_hook_surfaces_after_spandsp_returns(
    fine_tiff: Path, tmp_path: Path
) -> None:
    """Pitfall: an exception must not unwind through C; it is re-raised by the session."""

    def explode(event: FaxEvent) -> None:
        if isinstance(event, PageTransferred):
            raise RuntimeError(f"hook failed on page {event.page}")

    with (
        T38FaxSession(FaxJob.send(fine_tiff), on_event=explode) as tx,
        T38FaxSession(FaxJob.receive(tmp_path / "in.tif"), calling=False) as rx,
    ):
        call = Call(tx, rx)
        with pytest.raises(RuntimeError, match="hook failed on page 1"):
            while call.step():
                pass


def test_lost_audio_is_reported_as_fill_in_and_keeps_time(tmp_path: Path) -> None:
    """Pitfall: a lost block fed as silence; it must be reported with fax_rx_fillin."""
    with AudioFaxSession(FaxJob.receive(tmp_path / "in.tif"), calling=False) as session:
        for _ in range(50):
            session.receive_lost(160)
        assert session.elapsed_s == pytest.approx(1.0)
        # Fill-in drives the T.30 timers like received audio would: with nothing but
        # missing audio the receiver eventually gives up, as it would on a dead line.
        while not session.finished and session.elapsed_s < 60:
            session.transmit_audio(160)
            session.receive_lost(160)
        assert session.result is not None and not session.result.success


def test_line_reports_every_lost_block_as_fill_in(
    fine_tiff: Path, pages: list[Page], tmp_path: Path
) -> None:
    received = tmp_path / "in.tif"
    tx, rx = _pair(AudioFaxSession, fine_tiff, received)
    with tx, rx:
        call = Call(tx, rx, impairments=Impairments(lost_audio_blocks=0.002, seed=1))
        result = call.run()
        # Both sessions' clocks count every block, lost or not: nothing was skipped.
        assert tx.elapsed_s == rx.elapsed_s == pytest.approx(result.duration_s)
    assert result.lost_blocks > 0 and result.receiver.clean
    assert_pages_equal(received, pages)


@pytest.mark.parametrize("count", [1, 7, 160, 1000])
def test_transmit_always_fills_the_block(count: int, tmp_path: Path) -> None:
    """Pitfall: fax_tx returns short blocks when idle; the line needs full ones."""
    with AudioFaxSession(FaxJob.receive(tmp_path / "in.tif"), calling=False) as session:
        for _ in range(100):
            block = session.transmit_audio(count)
            assert block.shape == (count,) and block.dtype == np.int16
            session.receive_audio(np.zeros(count, dtype=np.int16))


def test_answering_side_sends_its_answer_tone(tmp_path: Path) -> None:
    with AudioFaxSession(FaxJob.receive(tmp_path / "in.tif"), calling=False) as session:
        audio = np.concatenate([session.transmit_audio(160) for _ in range(200)])
        assert np.abs(audio).max() > 1000  # CED (2100 Hz) within the first 4 s


def test_log_tag_buffer_outlives_garbage_collection(
    fine_tiff: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Pitfall: span_log_set_tag keeps the pointer; a freed buffer prints garbage."""
    tag = "-".join(["tag", "kept", str(id(tmp_path))])  # built at run time, no interned constant
    tx = T38FaxSession(FaxJob.send(fine_tiff), log_level=5, log_tag=tag)
    rx = T38FaxSession(FaxJob.receive(tmp_path / "in.tif"), calling=False)
    del tag
    gc.collect()
    with caplog.at_level(logging.DEBUG, logger="faxline.fax.spandsp"), tx, rx:
        call = Call(tx, rx)
        for _ in range(100):
            call.step()
            gc.collect(0)
    messages = [r.getMessage() for r in caplog.records]
    assert messages
    assert all(f"tag-kept-{id(tmp_path)}" in m for m in messages)


def test_missing_library_names_the_debian_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: "libspandsp-absent.so.9")
    with pytest.raises(FaxEngineUnavailable, match="install the Debian package libspandsp2"):
        _spandsp.lib.__wrapped__()


def test_state_is_freed_when_a_session_is_collected(fine_tiff: Path) -> None:
    freed: list[int] = []
    session = AudioFaxSession(FaxJob.send(fine_tiff))

    def record(state: int, original: Callable[[int], None] = session._free_state) -> None:
        freed.append(state)
        original(state)

    session._free_state = record  # type: ignore[method-assign]
    del session, record
    gc.collect()
    assert len(freed) == 1
