"""One media clock drives several real calls, on virtual time.

The event loop here keeps its own time: when nothing is ready it jumps straight to its next
timer instead of sleeping, and a test may make some of those waits overshoot, as a busy
machine does. The calls are real (two user agents, UDP on 127.0.0.1, SpanDSP at both ends,
T.38 and G.711 together on one :class:`MediaClock` at its real 20 ms tick), only time is a
parameter: the clock's spacing statistics read the loop's time too, so they show exactly
how evenly it sent each call's packets.
"""

from __future__ import annotations

import asyncio
import logging
import re
import selectors
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from faxline.fax import FaxJob
from faxline.sip.ua import UserAgent
from faxline.telephony import MediaClock, SipFaxResult, T38Mode, receive_fax, send_fax
from tests.fax.faxpages import Page, assert_pages_equal

T = TypeVar("T")


class VirtualSelector(selectors.EpollSelector):
    """Polls the real sockets without waiting; a wait moves the virtual time on instead.

    Every ``late_every``-th wait lasts ``late_s`` longer than asked (a loop that was late).
    """

    def __init__(self, late_every: int, late_s: float) -> None:
        super().__init__()
        self.now = 0.0
        self.waits = 0
        self._late_every = late_every
        self._late_s = late_s

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = super().select(0)
        if ready or timeout == 0:
            return ready
        if timeout is None:  # nothing scheduled: only the sockets can wake us
            return super().select(0.05)
        self.waits += 1
        late = self._late_every and self.waits % self._late_every == 0
        self.now += timeout + (self._late_s if late else 0.0)
        return super().select(0)


class VirtualLoop(asyncio.SelectorEventLoop):
    def __init__(self, selector: VirtualSelector) -> None:
        super().__init__(selector)
        self._virtual = selector

    def time(self) -> float:
        return self._virtual.now


def run_virtual(main: Callable[[], Awaitable[T]], *, late_every: int = 0, late_s: float = 0) -> T:
    loop = VirtualLoop(VirtualSelector(late_every, late_s))
    try:
        return loop.run_until_complete(main())
    finally:
        loop.close()


SPACING = re.compile(r"p99 ([\d.]+) ms, max ([\d.]+) ms; (\d+) late ticks")


def calls(
    one_page_tiff: Path, tmp_path: Path, modes: list[T38Mode], **lateness: Any
) -> tuple[list[tuple[SipFaxResult, SipFaxResult]], MediaClock]:
    """Place one call per mode, all at once on one clock; their results and the clock
    (``clock.ended_at``: the loop's time when the last call was over)."""
    clocks: list[MediaClock] = []

    async def main() -> list[tuple[SipFaxResult, SipFaxResult]]:
        loop = asyncio.get_running_loop()
        clock = MediaClock(monotonic=loop.time)
        clocks.append(clock)
        alice = await UserAgent.listen("127.0.0.1", 0, user="alice")
        bob = await UserAgent.listen("127.0.0.1", 0, user="bob")
        host, port = bob.address

        async def answer(i: int) -> SipFaxResult:
            incoming = await bob.incoming.get()
            job = FaxJob.receive(tmp_path / f"in-{i}.tif")
            return await receive_fax(incoming, job, clock=clock)

        async def call(mode: T38Mode) -> SipFaxResult:
            job = FaxJob.send(one_page_tiff, ident="+15550100")
            return await send_fax(alice, f"sip:bob@{host}:{port}", job, t38=mode, clock=clock)

        try:
            answers = [asyncio.create_task(answer(i)) for i in range(len(modes))]
            sent = await asyncio.gather(*(call(mode) for mode in modes))
            got = await asyncio.gather(*answers)
            clock.ended_at = loop.time()  # type: ignore[attr-defined]
            return list(zip(sent, got, strict=True))
        finally:
            alice.close()
            bob.close()

    tmp_path.mkdir(parents=True, exist_ok=True)
    results = run_virtual(main, **lateness)
    return results, clocks[0]


MODES = [T38Mode.PREFER, T38Mode.NEVER] * 3


def check_delivered(results: list[tuple[SipFaxResult, SipFaxResult]], tmp_path: Path) -> None:
    assert sorted(r.transport or "" for r, _ in results) == ["audio"] * 3 + ["t38"] * 3
    for sent, got in results:
        for result in (sent, got):
            assert result.fax is not None and result.fax.success, result
            assert result.ended == "completed"


@pytest.mark.slow
def test_one_clock_sends_every_calls_packets_evenly(
    one_page: list[Page], one_page_tiff: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="faxline.telephony")
    results, clock = calls(one_page_tiff, tmp_path, MODES)
    check_delivered(results, tmp_path)
    assert clock.late_ticks == 0
    for i in range(len(MODES)):
        assert_pages_equal(tmp_path / f"in-{i}.tif", one_page)
    assert clock.calls == 0 and clock.late_ticks == 0
    lines = [m for r in caplog.records if (m := SPACING.search(r.getMessage()))]
    assert lines, "the clock logs its spacing when it goes idle"
    intervals = sum(
        int(r.getMessage().split()[2]) for r in caplog.records if "packet intervals" in r.msg
    )
    # Six calls, two ends each, 10 s or more of media: every interval is one tick.
    assert intervals > 12 * 500
    for p99, worst, late in (
        (float(a), float(b), int(c)) for a, b, c in (m.groups() for m in lines)
    ):
        assert p99 <= 0.1 and worst < 0.1 and late == 0


def rtp_counts(caplog: pytest.LogCaptureFixture) -> list[tuple[int, int]]:
    """(received, sent) of every G.711 stream that carried a fax, from the call logs."""
    counts = []
    for record in caplog.records:
        message = record.getMessage()
        if message.startswith("rtp stream ended"):
            received, sent = (int(v) for v in re.findall(r"(\d+) (?:received|sent)", message))
            if sent:
                counts.append((received, sent))
    caplog.clear()
    return sorted(counts)


@pytest.mark.slow
def test_late_passes_are_caught_up_not_dropped(
    one_page_tiff: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="faxline.telephony")
    results, on_time = calls(one_page_tiff, tmp_path / "even", MODES)
    even = rtp_counts(caplog)
    # Every 40th wait of the loop overshoots by 50 ms: two or three ticks come due at once.
    results, clock = calls(one_page_tiff, tmp_path / "late", MODES, late_every=40, late_s=0.05)
    check_delivered(results, tmp_path)
    assert clock.late_ticks > 50
    worst = max(float(m.group(2)) for r in caplog.records if (m := SPACING.search(r.getMessage())))
    assert worst >= 50.0  # the lateness shows in the spacing, it is not hidden
    late = rtp_counts(caplog)
    # Late ticks run at once in the next pass, so the calls take as long as on time; a
    # clock that dropped them would have stretched every call by the ticks it dropped.
    stretched = clock.ended_at - on_time.ended_at  # type: ignore[attr-defined]
    assert abs(stretched) < 0.2 * clock.late_ticks * clock.tick_s, stretched
    # G.711 sends one packet per tick and T.30 counts samples: with ticks caught up, each
    # call sends as many packets as on time (give or take its last pass), and they arrive.
    assert len(late) == len(even) == 6
    for (received, sent), (_, sent_on_time) in zip(late, even, strict=True):
        assert abs(sent - sent_on_time) <= 3 and sent - 3 <= received <= sent
