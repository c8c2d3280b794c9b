"""A bounded, pure-Python reader of TIFF directory structure (classic TIFF and BigTIFF).

It reads tags only, never pixels, so it is safe on hostile input: sizes of every frame are
known before any decoder runs (Pillow checks a later frame's size only when loading it).
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from typing import Any, Protocol

MAX_DIRECTORIES = 10_000

_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4,
               16: 8, 17: 8, 18: 8}  # fmt: skip
_TYPE_FORMATS = {1: "B", 3: "H", 4: "I", 6: "b", 8: "h", 9: "i", 11: "f", 12: "d", 13: "I",
                 16: "Q", 17: "q", 18: "Q"}  # fmt: skip
_RATIONAL = {5: "I", 10: "i"}


class RandomAccess(Protocol):
    """Bytes read by offset: an open file, or a stored document (store.blobs.BlobReader)."""

    @property
    def size(self) -> int: ...

    def pread(self, size: int, offset: int) -> bytes: ...


class FdAccess:
    """An open file descriptor as :class:`RandomAccess`."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.size = os.fstat(fd).st_size

    def pread(self, size: int, offset: int) -> bytes:
        return os.pread(self.fd, size, offset)


class FileSource:
    """A TIFF file read a value at a time with ``pread``: reading the directories of a
    large file costs neither its size in memory nor, as a mapping would (the kernel maps
    in the pages around each one touched), in RSS. `source` is a file descriptor or any
    :class:`RandomAccess` (a document in the database)."""

    def __init__(self, source: int | RandomAccess) -> None:
        self._source = FdAccess(source) if isinstance(source, int) else source
        self._size = self._source.size

    def __len__(self) -> int:
        return self._size

    def unpack_from(self, fmt: str, offset: int) -> tuple[Any, ...]:
        size = struct.calcsize(fmt)
        data = self._source.pread(size, offset)
        if len(data) != size:
            raise struct.error(f"unpack_from needs {size} bytes at {offset}")
        return struct.unpack(fmt, data)


def _unpack(data: bytes | FileSource, fmt: str, offset: int) -> tuple[Any, ...]:
    if isinstance(data, FileSource):
        return data.unpack_from(fmt, offset)
    return struct.unpack_from(fmt, data, offset)


class TiffStructureError(ValueError):
    """The bytes are not a well-formed TIFF directory chain."""


@dataclass(frozen=True)
class TiffFrame:
    """The tags of one image file directory that matter for conversion and transmission."""

    tags: dict[int, tuple[float, ...]] = field(repr=False)

    def first(self, tag: int, default: float | None = None) -> float | None:
        values = self.tags.get(tag)
        return values[0] if values else default

    @property
    def width(self) -> int:
        return int(self.first(256, 0) or 0)

    @property
    def length(self) -> int:
        return int(self.first(257, 0) or 0)

    @property
    def bits_per_sample(self) -> int:
        return int(self.first(258, 1) or 1)

    @property
    def samples_per_pixel(self) -> int:
        return int(self.first(277, 1) or 1)

    @property
    def compression(self) -> int:
        return int(self.first(259, 1) or 1)

    @property
    def photometric(self) -> int | None:
        value = self.first(262)
        return None if value is None else int(value)

    @property
    def tiled(self) -> bool:
        return 322 in self.tags or 323 in self.tags or 324 in self.tags

    @property
    def strips(self) -> int:
        return len(self.tags.get(273, ()))

    @property
    def rows_per_strip(self) -> int:
        return int(self.first(278, 2**32 - 1) or 0)

    @property
    def resolution_unit(self) -> int:
        return int(self.first(296, 2) or 2)

    def resolution(self) -> tuple[float, float] | None:
        """(x, y) in dots per inch, or None when absent or meaningless."""
        x, y = self.first(282), self.first(283)
        unit = self.resolution_unit
        if not x or not y or unit not in (2, 3) or x <= 0 or y <= 0:
            return None
        scale = 2.54 if unit == 3 else 1.0
        return x * scale, y * scale


def read_frames(
    data: bytes | FileSource, max_directories: int = MAX_DIRECTORIES
) -> list[TiffFrame]:
    """Return the directories of the TIFF in ``data``, following the chain of next offsets.

    Raises TiffStructureError on anything malformed: bad header, offsets outside the file,
    a loop in the chain, or more than ``max_directories`` directories.
    """
    if len(data) < 8:
        raise TiffStructureError("the TIFF is truncated")
    order = _unpack(data, "2s", 0)[0]
    if order == b"II":
        end = "<"
    elif order == b"MM":
        end = ">"
    else:
        raise TiffStructureError("not a TIFF file")
    (magic,) = _unpack(data, end + "H", 2)
    if magic == 42:
        big = False
        (offset,) = _unpack(data, end + "I", 4)
    elif magic == 43:
        if len(data) < 16:
            raise TiffStructureError("the TIFF is truncated")
        big = True
        (offset,) = _unpack(data, end + "Q", 8)
    else:
        raise TiffStructureError("not a TIFF file")
    frames: list[TiffFrame] = []
    seen: set[int] = set()
    while offset:
        if offset in seen:
            raise TiffStructureError("the TIFF has a loop in its directory chain")
        if len(frames) >= max_directories:
            raise TiffStructureError(f"the TIFF has more than {max_directories} pages")
        seen.add(offset)
        frame, offset = _read_directory(data, offset, end, big)
        frames.append(frame)
    if not frames:
        raise TiffStructureError("the TIFF has no pages")
    return frames


def _read_directory(
    data: bytes | FileSource, offset: int, end: str, big: bool
) -> tuple[TiffFrame, int]:
    count_fmt, entry_size, off_fmt, inline = ("Q", 20, "Q", 8) if big else ("H", 12, "I", 4)
    count_size = struct.calcsize(count_fmt)
    if offset + count_size > len(data):
        raise TiffStructureError("the TIFF is truncated (directory outside the file)")
    (count,) = _unpack(data, end + count_fmt, offset)
    table = offset + count_size
    next_at = table + count * entry_size
    if next_at + inline > len(data):
        raise TiffStructureError("the TIFF is truncated (directory outside the file)")
    tags: dict[int, tuple[float, ...]] = {}
    for i in range(count):
        at = table + i * entry_size
        tag, typ = _unpack(data, end + "HH", at)
        (n,) = _unpack(data, end + off_fmt, at + 4)
        size = _TYPE_SIZES.get(typ)
        if size is None or typ in (2, 7):  # unknown, ASCII and UNDEFINED are not needed
            continue
        total = size * n
        if total <= inline:
            where = at + 4 + struct.calcsize(off_fmt)
        else:
            (where,) = _unpack(data, end + off_fmt, at + 4 + struct.calcsize(off_fmt))
            if where + total > len(data):
                raise TiffStructureError("the TIFF is truncated (tag value outside the file)")
        if n > 1_000_000:
            raise TiffStructureError("the TIFF has an absurd tag")
        if typ in _RATIONAL:
            raw = _unpack(data, f"{end}{2 * n}{_RATIONAL[typ]}", where)
            tags[tag] = tuple(
                raw[j] / raw[j + 1] if raw[j + 1] else 0.0 for j in range(0, 2 * n, 2)
            )
        else:
            tags[tag] = _unpack(data, f"{end}{n}{_TYPE_FORMATS[typ]}", where)
    (next_offset,) = _unpack(data, end + off_fmt, next_at)
    return TiffFrame(tags), int(next_offset)
