"""The in-process line as other layers use it: options, pacing, processes."""

from __future__ import annotations

import asyncio
import multiprocessing
import pickle
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from faxline.fax import (
    AudioFaxSession,
    Call,
    CallResult,
    Ending,
    FaxJob,
    Impairments,
    T38FaxSession,
    Transport,
    run_call,
    run_call_paced,
)


def test_sessions_of_different_transports_cannot_be_connected(
    fine_tiff: Path, tmp_path: Path
) -> None:
    with (
        AudioFaxSession(FaxJob.send(fine_tiff)) as tx,
        T38FaxSession(FaxJob.receive(tmp_path / "in.tif"), calling=False) as rx,
        pytest.raises(TypeError, match="both sessions"),
    ):
        Call(tx, rx)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"lost_audio_blocks": 1.5}, "lost_audio_blocks must be a probability"),
        ({"lost_packets": -0.1}, "lost_packets must be a probability"),
        ({"hangup_after_page": 0}, "counts pages from 1"),
    ],
)
def test_impairments_are_checked(options: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Impairments(**options)  # type: ignore[arg-type]


def test_result_is_only_ready_at_the_end(fine_tiff: Path, tmp_path: Path) -> None:
    with (
        AudioFaxSession(FaxJob.send(fine_tiff)) as tx,
        AudioFaxSession(FaxJob.receive(tmp_path / "in.tif"), calling=False) as rx,
    ):
        call = Call(tx, rx)
        call.step()
        with pytest.raises(RuntimeError, match="in progress"):
            call.result()


def test_results_pickle(fine_tiff: Path, tmp_path: Path) -> None:
    result = run_call(
        FaxJob.send(fine_tiff), FaxJob.receive(tmp_path / "in.tif"), transport=Transport.T38
    )
    assert pickle.loads(pickle.dumps(result)) == result


def test_run_call_in_a_worker_process(fine_tiff: Path, tmp_path: Path) -> None:
    # What the dispatcher does: plain arguments in, a CallResult back.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        future = pool.submit(
            run_call,
            FaxJob.send(fine_tiff, ident="+1 555 0100"),
            FaxJob.receive(tmp_path / "in.tif"),
            transport=Transport.T38,
            impairments=Impairments(lost_packets=0.05, seed=4),
        )
        result = future.result(timeout=120)
    assert isinstance(result, CallResult)
    assert result.sender.success and result.receiver.pages == 3
    assert result.receiver.remote_ident == "+1 555 0100"


@pytest.mark.parametrize("transport", list(Transport))
def test_paced_call_runs_on_the_event_loop(
    transport: Transport, fine_tiff: Path, tmp_path: Path
) -> None:
    ticks = 0

    async def main() -> CallResult:
        loop = asyncio.get_running_loop()
        handle: asyncio.Handle | None = None

        def tick() -> None:  # counts the loop's iterations while the call runs
            nonlocal ticks, handle
            ticks += 1
            handle = loop.call_soon(tick)

        tick()
        try:
            return await run_call_paced(
                FaxJob.send(fine_tiff),
                FaxJob.receive(tmp_path / "in.tif"),
                transport=transport,
                max_duration_s=0.2,
            )
        finally:
            assert handle is not None
            handle.cancel()

    result = asyncio.run(main())
    assert result.ending is Ending.MAX_DURATION
    assert result.duration_s == pytest.approx(0.2)
    assert not result.sender.success
    assert ticks > 10  # the loop ran other tasks between blocks
