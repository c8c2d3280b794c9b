from __future__ import annotations

import asyncio

import numpy as np
import pytest
from documents_factory import jpeg, text_pdf

from faxline.documents import ConversionLimits, ConverterPool, DocumentError, InputFile
from faxline.documents.faxtiff import read_fax_tiff


def test_pool_matches_in_process_conversion(a4_text_pdf: bytes) -> None:
    from faxline.documents import convert_documents

    long_pdf = text_pdf(9)
    files = [InputFile("long.pdf", long_pdf), InputFile(None, jpeg()), InputFile("t.txt", b"hi")]

    async def run() -> None:
        with ConverterPool(workers=2) as pool:
            document = await pool.convert(files)
            assert document.pages == 11
            assert document.tiff is not None
            local = convert_documents(files)
            assert local.tiff is not None
            for a, b in zip(read_fax_tiff(document.tiff), read_fax_tiff(local.tiff), strict=True):
                assert np.array_equal(a, b)
            with pytest.raises(DocumentError, match=r"^bad\.pdf: the PDF is encrypted"):
                await pool.convert(
                    [InputFile("ok.txt", b"x"), InputFile("bad.pdf", text_pdf(1, encrypt="pw"))]
                )
            blank = await pool.convert([InputFile("b.txt", b"\f\n")])
            assert blank.pages == 0 and blank.tiff is None

    asyncio.run(run())


def test_pool_survives_timeouts_and_memory_kills() -> None:
    # Dense text, 400 pages: far beyond a one-second budget on any machine.
    slow = ("lorem ipsum dolor sit amet " * 3 + "\n") * 60 * 400
    # 8000 x 8000 RGB that decodes to ~256 MB, under a 500 MB address-space limit.
    row = b"\x81\x00" * 187 + b"\xc1\x00"
    huge = _rgb_packbits_tiff(8000, 8000, row * 8000)
    limits = ConversionLimits(max_pages=1000, timeout_s=1.5, memory_bytes=500 * 1024**2)

    async def run() -> None:
        with ConverterPool(workers=1, limits=limits) as pool:
            with pytest.raises(
                DocumentError, match=r"^slow\.txt: the conversion took longer than 1\.5 s"
            ):
                await pool.convert([InputFile("slow.txt", slow.encode())])
            assert (await pool.convert([InputFile("a.txt", b"after the timeout")])).pages == 1
            with pytest.raises(DocumentError, match=r"^huge\.tif: .*memory"):
                await pool.convert([InputFile("huge.tif", huge)])
            assert (await pool.convert([InputFile("b.txt", b"after the memory error")])).pages == 1

    asyncio.run(run())


def _rgb_packbits_tiff(width: int, height: int, strip: bytes) -> bytes:
    import struct

    out = bytearray(b"II*\x00\x00\x00\x00\x00")
    at = len(out)
    out += strip
    ifd = len(out)
    bps_at = ifd + 2 + 12 * 9 + 4
    entries = [
        (256, 4, 1, width), (257, 4, 1, height), (258, 3, 3, bps_at), (259, 3, 1, 32773),
        (262, 3, 1, 2), (273, 4, 1, at), (277, 3, 1, 3), (278, 4, 1, height),
        (279, 4, 1, len(strip)),
    ]  # fmt: skip
    out += struct.pack("<H", len(entries))
    for tag, typ, count, value in entries:
        packed = (
            struct.pack("<HH", value, 0) if typ == 3 and count == 1 else struct.pack("<I", value)
        )
        out += struct.pack("<HHI", tag, typ, count) + packed
    out += b"\x00\x00\x00\x00" + struct.pack("<HHH", 8, 8, 8)
    struct.pack_into("<I", out, 4, ifd)
    return bytes(out)


def test_a_worker_that_dies_gives_a_document_error() -> None:
    # Too little address space for the interpreter to even import the converter.
    limits = ConversionLimits(memory_bytes=48 * 1024**2)

    async def run() -> None:
        with ConverterPool(workers=1, limits=limits) as pool:
            for _ in range(2):
                with pytest.raises(DocumentError, match=r"^file 1: the conversion failed"):
                    await pool.convert([InputFile(None, b"hello")])

    asyncio.run(run())


def test_a_cancelled_conversion_frees_its_worker() -> None:
    slow = (("lorem ipsum dolor sit amet " * 3 + "\n") * 60 * 400).encode()

    async def run() -> None:
        with ConverterPool(workers=1, limits=ConversionLimits(max_pages=1000)) as pool:
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(pool.convert([InputFile("slow.txt", slow)]), 1.0)
            assert (await pool.convert([InputFile("a.txt", b"next one")])).pages == 1

    asyncio.run(run())


def test_one_worker_serves_queued_requests_from_several_event_loops() -> None:
    async def many(pool: ConverterPool) -> list[int]:
        files = [[InputFile(f"{n}.txt", f"page {n}".encode())] for n in range(4)]
        documents = await asyncio.gather(*(pool.convert(f) for f in files))
        return [d.pages for d in documents]

    with ConverterPool(workers=1) as pool:
        assert asyncio.run(many(pool)) == [1, 1, 1, 1]
        assert asyncio.run(many(pool)) == [1, 1, 1, 1]


def test_closed_pool_refuses_work() -> None:
    pool = ConverterPool(workers=1)
    pool.close()
    with pytest.raises(RuntimeError):
        asyncio.run(pool.convert([InputFile("a.txt", b"x")]))


def test_conversions_in_worker_processes_reach_the_parents_metrics() -> None:
    """The pages are counted in the conversion worker and relayed back with the result, so
    `/metrics` of the server (the parent) shows them; results and durations are counted here."""
    from prometheus_client import REGISTRY

    def value(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    def counts() -> tuple[float, ...]:
        return (
            value("faxline_converted_pages_total"),
            value("faxline_conversions_total", result="ok"),
            value("faxline_conversions_total", result="error"),
            value("faxline_conversion_seconds_count"),
        )

    async def run() -> tuple[float, ...]:
        with ConverterPool(workers=1) as pool:
            await pool.convert([InputFile("four.pdf", text_pdf(4))])
            with pytest.raises(DocumentError):
                await pool.convert([InputFile("bad.pdf", text_pdf(1, encrypt="pw"))])
            return counts()

    before = counts()
    after = asyncio.run(run())
    assert [a - b for a, b in zip(after, before, strict=True)] == [4, 1, 1, 2]
