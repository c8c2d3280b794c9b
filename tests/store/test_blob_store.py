"""The blob store on both backends: streamed, transactional, deleted with the fax, and the
old layout's files moved into PostgreSQL."""

from __future__ import annotations

import hashlib
import os
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from faxline.store.blobs import CHUNK_SIZE, BlobMissing, BlobStore
from faxline.store.blobstores import blob_store_for
from faxline.store.db import import_documents, make_engine, migrate, session_factory


@pytest.fixture
def store(database_url: str, tmp_path: Path) -> Iterator[tuple[Engine, BlobStore]]:
    engine = make_engine(database_url)
    migrate(engine)
    yield engine, blob_store_for(engine, tmp_path / "data")
    engine.dispose()


def _pieces(total: int, seed: int = 1) -> Iterator[bytes]:
    """`total` pseudo-random bytes in odd-sized pieces (never whole in memory)."""
    block = hashlib.sha256(str(seed).encode()).digest() * 3000  # 96000 bytes
    sent = 0
    while sent < total:
        piece = block[: min(len(block) - sent % 7, total - sent)]
        sent += len(piece)
        yield piece


def test_write_commits_with_the_transaction_and_reads_back(
    store: tuple[Engine, BlobStore],
) -> None:
    engine, blobs = store
    total = 3 * CHUNK_SIZE + 12345
    expected = b"".join(_pieces(total))
    with session_factory(engine)() as s, blobs.transaction(s) as writes:
        assert writes.write("a.tif", _pieces(total)) == total
    with blobs.open("a.tif") as reader:
        assert reader.size == total
        assert b"".join(reader.chunks()) == expected
        # Reads across a chunk boundary, at the end, and past it.
        assert reader.pread(100, CHUNK_SIZE - 50) == expected[CHUNK_SIZE - 50 : CHUNK_SIZE + 50]
        assert reader.pread(10, total - 4) == expected[-4:]
        assert reader.pread(10, total + 5) == b""


def test_rollback_leaves_no_blob_and_delete_removes_it(store: tuple[Engine, BlobStore]) -> None:
    engine, blobs = store
    with (
        pytest.raises(RuntimeError),
        session_factory(engine)() as s,
        blobs.transaction(s) as writes,
    ):
        writes.write("b.tif", _pieces(CHUNK_SIZE * 2))
        raise RuntimeError("the fax rows failed")
    assert not blobs.exists("b.tif")
    with pytest.raises(BlobMissing):
        blobs.open("b.tif")
    assert [p for p in blobs.spool.iterdir() if p.name.startswith(".tmp-")] == []
    with session_factory(engine)() as s, blobs.transaction(s) as writes:
        writes.write("c.tif", [b"data"])
    with session_factory(engine)() as s, blobs.transaction(s) as writes:
        writes.delete("c.tif")
    assert not blobs.exists("c.tif")


def test_bad_names_are_refused(store: tuple[Engine, BlobStore]) -> None:
    engine, blobs = store
    with (
        pytest.raises(ValueError, match="bad document name"),
        session_factory(engine)() as s,
        blobs.transaction(s) as writes,
    ):
        writes.write("../x.tif", [b"x"])


def test_reading_a_large_blob_costs_about_one_chunk(store: tuple[Engine, BlobStore]) -> None:
    # About what a 200-page fine fax weighs (G4 pages of 60-100 KiB): 20 MiB.
    engine, blobs = store
    total = 20 * 1024 * 1024
    tracemalloc.start()
    try:
        with session_factory(engine)() as s, blobs.transaction(s) as writes:
            writes.write("big.tif", _pieces(total))
        _, write_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        seen = 0
        with blobs.open("big.tif") as reader:
            for piece in reader.chunks():
                seen += len(piece)
        _, read_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert seen == total
    # A few chunks at most (the driver's buffers and the hex text of a bytea), not 20 MiB.
    assert read_peak < 6 * CHUNK_SIZE, read_peak
    assert write_peak < 8 * CHUNK_SIZE, write_peak


def test_old_layout_files_are_moved_in_and_readable(database_url: str, tmp_path: Path) -> None:
    """A fax stored the old way (faxes/<uid>.tif on disk) is readable through the store
    after the migration; on PostgreSQL the file has moved into the database."""
    import datetime as dt

    from faxline.store.models import Extension, Fax, Organization, User

    data = tmp_path / "data"
    engine = make_engine(database_url)
    migrate(engine)
    (data / "faxes").mkdir(parents=True)
    old = data / "faxes" / "0123abcd.tif"
    content = os.urandom(CHUNK_SIZE + 999)
    old.write_bytes(content)
    with session_factory(engine)() as s:
        org = Organization(code="0001", name="Old")
        user = User(uid="old", organization=org, role="user")
        ext = Extension(number="0001*210", short="210", organization=org, owner=user)
        s.add_all([org, user, ext])
        s.flush()
        s.add(
            Fax(
                uid="0123abcd" * 4, direction="in", extension_id=ext.id, created_by_id=None,
                created_at=dt.datetime.now(dt.UTC), pages=1, resolution="fine",
                document=old.name, recipients=[],
            )
        )  # fmt: skip
        s.commit()
    moved = import_documents(engine, data / "faxes")
    blobs = blob_store_for(engine, data)
    with blobs.open(old.name) as reader:
        assert b"".join(reader.chunks()) == content
    if engine.dialect.name == "postgresql":
        assert moved == 1 and not old.exists()
        assert import_documents(engine, data / "faxes") == 0  # twice is harmless
    else:
        assert moved == 0 and old.exists()
    engine.dispose()
