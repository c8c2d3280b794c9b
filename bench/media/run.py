#!/usr/bin/env python3
"""Media micro-benchmark: the Python cost of one call end's 20 ms tick, without SIP or time.

Runs ``--pairs`` one-page fax calls (a sending and a receiving stream each) over T.38 and
G.711 in simulated time, datagrams handed from one stream to the other in memory, and
prints CPU microseconds per tick per call end (everything but the sockets: packet parsing
and building, jitter buffer, G.711, the fax binding and SpanDSP). ``--profile`` prints
cProfile's top functions. Faster than bench/sip and nearly free of the machine's load, so
it is the loop to iterate on; bench/sip stays the measure that counts.

Usage: PYTHONPATH=src .venv/bin/python bench/media/run.py [--pairs 4] [--profile]
"""

from __future__ import annotations

import argparse
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
from faxline.fax import AudioFaxSession, FaxJob, T38FaxSession  # noqa: E402
from faxline.sip.negotiation import PCMU  # noqa: E402
from faxline.telephony.streams import AudioStream, T38Stream  # noqa: E402

Stream = AudioStream | T38Stream


def run(transport: str, pairs: int, tiff: Path, out: Path) -> tuple[int, float]:
    """Carry ``pairs`` calls to their end; return (ticks of all call ends, CPU seconds)."""
    streams: list[tuple[Stream, Stream]] = []
    sessions = []
    for i in range(pairs):
        received = out / f"{transport}-{i}.tif"
        if transport == "t38":
            tx = T38FaxSession(FaxJob.send(tiff), calling=True)
            rx = T38FaxSession(FaxJob.receive(received), calling=False)
            a: Stream = T38Stream(tx, remote=None, now=0.0)
            b: Stream = T38Stream(rx, remote=None, now=0.0)
        else:
            tx = AudioFaxSession(FaxJob.send(tiff), calling=True)
            rx = AudioFaxSession(FaxJob.receive(received), calling=False)
            a = AudioStream(tx, payload_type=PCMU, ssrc=1, sequence=1, timestamp=0, now=0.0)
            b = AudioStream(rx, payload_type=PCMU, ssrc=2, sequence=7, timestamp=9, now=0.0)
        streams.append((a, b))
        sessions += [tx, rx]
    ticks = 0
    now = 0.0
    started = time.process_time()
    live = list(streams)
    while live and now < 120.0:
        now += 0.02
        for pair in list(live):
            for source, target in (pair, pair[::-1]):
                for data in source.tick(now):
                    target.receive(data, now)
                ticks += 1
            if all(s.session is not None and s.session.finished for s in pair):
                live.remove(pair)
    cpu = time.process_time() - started
    for session in sessions:
        if not session.finished:
            raise SystemExit(f"{transport}: a call did not finish")
        session.hangup()
        session.close()
    return ticks, cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=4)
    parser.add_argument("--transports", default="t38,g711")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    with open("/proc/loadavg") as f:
        print(f"load average: {' '.join(f.read().split()[:3])}")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        tiff = out / "page.tif"
        tiff.write_bytes(write_fax_tiff(make_pages(1, seed=41), Resolution.FINE))
        for transport in args.transports.split(","):
            profiler = cProfile.Profile() if args.profile else None
            if profiler:
                profiler.enable()
            ticks, cpu = run(transport, args.pairs, tiff, out)
            if profiler:
                profiler.disable()
            print(f"{transport}: {ticks} call-end ticks, {1e6 * cpu / ticks:.1f} us CPU each")
            if profiler:
                pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
    return 0


if __name__ == "__main__":
    sys.exit(main())
