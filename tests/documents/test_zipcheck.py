"""Office zips are checked before LibreOffice sees them: bombs and huge parts are refused."""

from __future__ import annotations

import io
import struct
import zipfile

import pytest

from faxline.documents import DocumentError, InputFile, convert_documents
from faxline.documents.office import OfficePool
from faxline.documents.zipcheck import ZipLimits, check_zip

_DOCX_PARTS = {"[Content_Types].xml": b"<Types/>", "word/document.xml": b"<w:document/>"}


def _docx(extra: dict[str, bytes], level: int = 9) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=level) as archive:
        for name, data in {**_DOCX_PARTS, **extra}.items():
            archive.writestr(name, data)
    return out.getvalue()


def _refused(data: bytes, match: str) -> None:
    # The pool is never started: the file is refused before LibreOffice is involved.
    with OfficePool(1) as office:
        with pytest.raises(DocumentError, match=match):
            convert_documents([InputFile("contract.docx", data)], office=office)
        assert office.pids == []


def test_huge_part_is_refused() -> None:
    bomb = _docx({"word/media/huge.bin": bytes(80 * 1024**2)})
    assert len(bomb) < 200_000
    _refused(bomb, r"^contract\.docx: the part 'word/media/huge\.bin' is 83886080 bytes")


def test_high_ratio_is_refused() -> None:
    bomb = _docx({f"word/part{i}.xml": b" " * 2 * 1024**2 for i in range(20)})
    _refused(bomb, r"^contract\.docx: the document expands \d+ times when unpacked")


def test_total_and_entry_count_limits() -> None:
    limits = ZipLimits(max_entries=5, max_total_bytes=1000)
    many = _docx({f"p{i}": b"x" for i in range(5)})
    with pytest.raises(DocumentError, match=r"^m\.docx: the document holds more than 5 parts"):
        check_zip(many, "m.docx", limits)
    big = _docx({"p": b"x" * 2000})
    with pytest.raises(DocumentError, match=r"is 2\d{3} bytes uncompressed, over the limit"):
        check_zip(big, "b.docx", limits)


def test_directory_that_lies_about_sizes_is_refused() -> None:
    data = bytearray(_docx({"word/media/big.bin": bytes(10 * 1024**2)}, level=1))
    # Claim the big part is 100 bytes, in its local header and in the central directory.
    name = b"word/media/big.bin"
    for signature, size_at, name_at in ((b"PK\x03\x04", 22, 30), (b"PK\x01\x02", 24, 46)):
        at = data.find(signature)
        while at != -1:
            if data[at + name_at : at + name_at + len(name)] == name:
                struct.pack_into("<I", data, at + size_at, 100)
            at = data.find(signature, at + 1)
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as archive:
        assert archive.getinfo(name.decode()).file_size == 100
    _refused(bytes(data), r"^contract\.docx: the document's zip container is corrupt")
