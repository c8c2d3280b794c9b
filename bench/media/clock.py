#!/usr/bin/env python3
"""Media clock benchmark: N real-time fax calls in one process, both ends on one clock.

Two user agents on 127.0.0.1 and ``--calls`` one-page faxes between them over T.38 or
G.711, driven by one :class:`~faxline.telephony.MediaClock` at its real 20 ms tick (so the
clock's pass, the sockets and the streams are all in it, SIP set-up and the database are
not). After ``--warm`` seconds it measures the process's CPU for ``--seconds`` and prints
CPU microseconds per tick per call end, the clock's late ticks and its spacing jitter;
``--profile`` prints cProfile's top functions for the measured stretch.

Usage: PYTHONPATH=src .venv/bin/python bench/media/clock.py [--calls 50] [--transport t38]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "fax"))

from faxpages import make_pages  # noqa: E402

from faxline.documents import Resolution  # noqa: E402
from faxline.documents.faxtiff import write_fax_tiff  # noqa: E402
from faxline.fax import FaxJob  # noqa: E402
from faxline.sip.ua import UserAgent  # noqa: E402
from faxline.telephony import MediaClock, T38Mode, receive_fax, send_fax  # noqa: E402


async def main_async(args: argparse.Namespace, tiff: Path, out: Path) -> None:
    clock = MediaClock()
    alice = await UserAgent.listen("127.0.0.1", 0, user="alice")
    bob = await UserAgent.listen("127.0.0.1", 0, user="bob")
    host, port = bob.address
    mode = T38Mode.PREFER if args.transport == "t38" else T38Mode.NEVER

    async def answer(i: int) -> None:
        incoming = await bob.incoming.get()
        await receive_fax(incoming, FaxJob.receive(out / f"in-{i}.tif"), clock=clock)

    async def call(i: int) -> None:
        job = FaxJob.send(tiff, ident="+15550100")
        await send_fax(alice, f"sip:bob@{host}:{port}", job, t38=mode, clock=clock)

    tasks = [asyncio.create_task(answer(i)) for i in range(args.calls)]
    tasks += [asyncio.create_task(call(i)) for i in range(args.calls)]
    await asyncio.sleep(args.warm)
    transports = [r.flow.media.transport for r in clock._calls]
    profiler = cProfile.Profile() if args.profile else None
    late = clock.late_ticks
    cpu, wall = time.process_time(), time.monotonic()
    if profiler:
        profiler.enable()
    await asyncio.sleep(args.seconds)
    if profiler:
        profiler.disable()
    cpu, wall = time.process_time() - cpu, time.monotonic() - wall
    ends = clock.calls
    spacing = clock.spacing
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    alice.close()
    bob.close()
    ticks = ends * wall / clock.tick_s
    print(
        f"{args.transport}: {ends} call ends on {set(transports)}, {wall:.1f} s,"
        f" {1e6 * cpu / ticks:.1f} us CPU per tick per call end,"
        f" {100 * cpu / wall:.0f} % of a core; {clock.late_ticks - late} late ticks;"
        f" spacing p50 {spacing.percentile_ms(0.5):.1f} ms p99 {spacing.percentile_ms(0.99):.1f}"
        f" ms max {spacing.worst_ms:.1f} ms"
    )
    if profiler:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--transport", default="t38", choices=("t38", "g711"))
    parser.add_argument("--warm", type=float, default=4.0)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    with open("/proc/loadavg") as f:
        print(f"load average: {' '.join(f.read().split()[:3])}")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        tiff = out / "page.tif"
        tiff.write_bytes(write_fax_tiff(make_pages(1, seed=41), Resolution.FINE))
        asyncio.run(main_async(args, tiff, out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
