"""Blob store throughput: write and read a 20 MiB document, MB/s, on FAXLINE_DATABASE_URL
(or SQLite in a temporary folder). Prints figures; asserts nothing about speed."""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

from faxline.store.blobs import chunked
from faxline.store.blobstores import blob_store_for
from faxline.store.db import make_engine, migrate, session_factory

SIZE = 20 * 1024 * 1024


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = os.environ.get("FAXLINE_DATABASE_URL") or f"sqlite:///{tmp}/b.sqlite3"
        engine = make_engine(url)
        migrate(engine)
        blobs = blob_store_for(engine, Path(tmp))
        data = os.urandom(SIZE)
        name = f"bench-{os.getpid()}.tif"
        started = time.perf_counter()
        with session_factory(engine)() as s, blobs.transaction(s) as writes:
            writes.write(name, chunked(data))
        wrote = time.perf_counter() - started
        started = time.perf_counter()
        with blobs.open(name) as reader:
            total = sum(len(p) for p in reader.chunks())
        read = time.perf_counter() - started
        assert total == SIZE
        with session_factory(engine)() as s, blobs.transaction(s) as writes:
            writes.delete(name)
        engine.dispose()
        mb = SIZE / 1e6
        print(f"{engine.dialect.name}: write {mb / wrote:.0f} MB/s, read {mb / read:.0f} MB/s")


if __name__ == "__main__":
    sys.exit(main())
