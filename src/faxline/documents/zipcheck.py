"""Zip containers (OOXML, OpenDocument): which format they hold, and whether they are safe.

A docx is a zip; before LibreOffice sees one, its directory is checked against limits on
entries, on the size of each part and of all parts together, and on the compression ratio,
and then every part is decompressed (bounded by those sizes) so that a directory that lies
about sizes is caught by the CRC check rather than by LibreOffice's memory.
"""

from __future__ import annotations

import io
import zipfile
import zlib
from dataclasses import dataclass
from typing import Literal

from faxline.documents.errors import DocumentError

ZipKind = Literal["docx", "xlsx", "pptx", "odt", "ods", "odp"]

ZIP_KINDS: frozenset[str] = frozenset({"docx", "xlsx", "pptx", "odt", "ods", "odp"})
_OOXML_MAIN: dict[str, ZipKind] = {
    "word/document.xml": "docx",
    "xl/workbook.xml": "xlsx",
    "ppt/presentation.xml": "pptx",
}
_ODF_MIMETYPES: dict[bytes, ZipKind] = {
    b"application/vnd.oasis.opendocument.text": "odt",
    b"application/vnd.oasis.opendocument.spreadsheet": "ods",
    b"application/vnd.oasis.opendocument.presentation": "odp",
}
_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, OSError, EOFError,
               ValueError, NotImplementedError, KeyError)  # fmt: skip
_CHUNK = 1 << 20


@dataclass(frozen=True)
class ZipLimits:
    """What an Office zip may hold; real documents are far below every one of these."""

    max_entries: int = 5_000
    max_entry_bytes: int = 64 * 1024**2
    max_total_bytes: int = 256 * 1024**2
    max_ratio: float = 100.0
    ratio_floor_bytes: int = 4 * 1024**2
    """Below this total uncompressed size the ratio is not judged (tiny XML packs well)."""


def zip_kind(data: bytes) -> ZipKind | None:
    """The Office format of a zip, from its parts; None when it is no Office document."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
            for main, kind in _OOXML_MAIN.items():
                if main in names and "[Content_Types].xml" in names:
                    return kind
            if "mimetype" in names:
                info = archive.getinfo("mimetype")
                if info.file_size <= 200:
                    return _ODF_MIMETYPES.get(archive.read(info).strip())
    except _ZIP_ERRORS:
        return None
    return None


def check_zip(data: bytes, name: str, limits: ZipLimits = ZipLimits()) -> None:
    """Refuse a zip bomb, a huge part or a corrupt zip with a DocumentError naming the file."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            entries = archive.infolist()
            if len(entries) > limits.max_entries:
                raise DocumentError(
                    name, f"the document holds more than {limits.max_entries} parts"
                )
            total = 0
            for info in entries:
                if info.file_size > limits.max_entry_bytes:
                    raise DocumentError(
                        name,
                        f"the part {info.filename!r} is {info.file_size} bytes uncompressed, "
                        f"over the limit of {limits.max_entry_bytes} bytes",
                    )
                total += info.file_size
            if total > limits.max_total_bytes:
                raise DocumentError(
                    name,
                    f"the document is {total} bytes uncompressed, over the limit of "
                    f"{limits.max_total_bytes} bytes",
                )
            if total > limits.ratio_floor_bytes and total > limits.max_ratio * len(data):
                raise DocumentError(
                    name,
                    f"the document expands {total / len(data):.0f} times when unpacked "
                    f"(a zip bomb?); the limit is {limits.max_ratio:g}",
                )
            for info in entries:
                _read_fully(archive, info)
    except DocumentError:
        raise
    except _ZIP_ERRORS:
        raise DocumentError(name, "the document's zip container is corrupt") from None


def _read_fully(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> None:
    # zipfile stops at the declared size and checks the CRC at the end: a part bigger
    # than its directory entry says fails here, after at most the declared bytes.
    with archive.open(info) as part:
        while part.read(_CHUNK):
            pass
