"""Cost of a `/metrics` scrape on a big database: the queue-depth query (one query, see
store/depth.py) and the whole exposition, p50/p99 over repeated scrapes, with N finished
and M unfinished deliveries and pending outbox messages. On FAXLINE_DATABASE_URL (a scratch
PostgreSQL database: its tables are filled) or SQLite in a temporary folder.

    python bench/metrics/run.py [--finished 200000] [--waiting 5000] [--scrapes 200]

Prints figures; asserts nothing about speed."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from prometheus_client import generate_latest
from sqlalchemy import insert, select, text
from sqlalchemy.orm import Session, sessionmaker

from faxline.api.metrics import _Scrape
from faxline.directory.provision import apply
from faxline.directory.provision_file import parse
from faxline.store.db import make_engine, migrate, session_factory
from faxline.store.depth import depth
from faxline.store.models import Delivery, Extension, Fax, OutboxMessage

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo.json"
STATUSES = ("queued", "retrying", "sending")


def fill(sessions: sessionmaker[Session], finished: int, waiting: int) -> None:
    now = dt.datetime.now(dt.UTC)
    with sessions() as s:
        apply(s, parse(json.loads(DEMO.read_text())))
        ext = s.scalar(select(Extension.id).where(Extension.number == "0003*210"))
        total = finished + waiting
        for start in range(0, total, 10_000):
            n = min(10_000, total - start)
            faxes = [
                {
                    "uid": f"bench{start + i:027d}",
                    "direction": "out",
                    "extension_id": ext,
                    "created_at": now,
                    "pages": 1,
                    "resolution": "fine",
                    "document": "x.tif",
                    "recipients": ["211"],
                }
                for i in range(n)
            ]
            ids = s.scalars(insert(Fax).returning(Fax.id), faxes).all()
            rows = []
            for i, fax_id in enumerate(ids):
                k = start + i
                done = k < finished
                status = "delivered" if done else STATUSES[k % len(STATUSES)]
                due = now - dt.timedelta(seconds=k % 600)
                rows.append(
                    {
                        "fax_id": fax_id,
                        "recipient": "211",
                        "destination": "0003*211",
                        "status": status,
                        "attempts": 1,
                        "created_at": now,
                        "updated_at": now,
                        "next_attempt_at": None if done else due,
                        "completed_at": now if done else None,
                    }
                )
            s.execute(insert(Delivery), rows)
            messages = [
                {
                    "channel": "webhook" if k % 2 else "mail",
                    "fax_id": None,
                    "event_type": "fax.completed",
                    "message_id": f"msg_{start + k}",
                    "payload": "{}",
                    "status": "delivered" if start + k < finished else "pending",
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                }
                for k in range(n)
            ]
            s.execute(insert(OutboxMessage), messages)
            s.commit()


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"p50 {statistics.median(ordered) * 1000:.2f} ms, p99 {p99 * 1000:.2f} ms"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--finished", type=int, default=200_000)
    parser.add_argument("--waiting", type=int, default=5_000)
    parser.add_argument("--scrapes", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = os.environ.get("FAXLINE_DATABASE_URL") or f"sqlite:///{tmp}/m.sqlite3"
        engine = make_engine(url)
        if engine.dialect.name == "postgresql":
            with engine.begin() as c:
                c.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        migrate(engine)
        sessions = session_factory(engine)
        started = time.perf_counter()
        fill(sessions, args.finished, args.waiting)
        filled = time.perf_counter() - started
        if engine.dialect.name == "postgresql":
            with engine.begin() as c:
                c.execute(text("ANALYZE"))
        queries, scrapes = [], []
        for _ in range(args.scrapes):
            t0 = time.perf_counter()
            with sessions() as s:
                figures = depth(s, dt.datetime.now(dt.UTC))
            t1 = time.perf_counter()
            body = generate_latest(_Scrape(figures, time.time()))
            t2 = time.perf_counter()
            queries.append(t1 - t0)
            scrapes.append(t2 - t0)
        engine.dispose()
    with open("/proc/loadavg") as f:
        load = f.read().split()[0]
    print(
        f"{engine.dialect.name}: {args.finished} finished + {args.waiting} unfinished deliveries"
        f" (filled in {filled:.0f} s), {args.scrapes} scrapes, load {load}"
    )
    print(f"  depth query: {percentiles(queries)}")
    print(f"  whole scrape ({len(body)} bytes): {percentiles(scrapes)}")
    print(f"  figures: {figures.deliveries}, outbox {figures.outbox}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
