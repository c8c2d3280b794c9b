"""A bounded, pure-Python reader of TIFF directory structure (classic TIFF and BigTIFF).

It reads tags only, never pixels, so it is safe on hostile input: sizes of every frame are
known before any decoder runs (Pillow checks a later frame's size only when loading it).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

MAX_DIRECTORIES = 10_000

_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4,
               16: 8, 17: 8, 18: 8}  # fmt: skip
_TYPE_FORMATS = {1: "B", 3: "H", 4: "I", 6: "b", 8: "h", 9: "i", 11: "f", 12: "d", 13: "I",
                 16: "Q", 17: "q", 18: "Q"}  # fmt: skip
_RATIONAL = {5: "I", 10: "i"}


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


def read_frames(data: bytes, max_directories: int = MAX_DIRECTORIES) -> list[TiffFrame]:
    """Return the directories of the TIFF in ``data``, following the chain of next offsets.

    Raises TiffStructureError on anything malformed: bad header, offsets outside the file,
    a loop in the chain, or more than ``max_directories`` directories.
    """
    if len(data) < 8:
        raise TiffStructureError("the TIFF is truncated")
    order = data[:2]
    if order == b"II":
        end = "<"
    elif order == b"MM":
        end = ">"
    else:
        raise TiffStructureError("not a TIFF file")
    (magic,) = struct.unpack_from(end + "H", data, 2)
    if magic == 42:
        big = False
        (offset,) = struct.unpack_from(end + "I", data, 4)
    elif magic == 43:
        if len(data) < 16:
            raise TiffStructureError("the TIFF is truncated")
        big = True
        (offset,) = struct.unpack_from(end + "Q", data, 8)
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


def _read_directory(data: bytes, offset: int, end: str, big: bool) -> tuple[TiffFrame, int]:
    count_fmt, entry_size, off_fmt, inline = ("Q", 20, "Q", 8) if big else ("H", 12, "I", 4)
    count_size = struct.calcsize(count_fmt)
    if offset + count_size > len(data):
        raise TiffStructureError("the TIFF is truncated (directory outside the file)")
    (count,) = struct.unpack_from(end + count_fmt, data, offset)
    table = offset + count_size
    next_at = table + count * entry_size
    if next_at + inline > len(data):
        raise TiffStructureError("the TIFF is truncated (directory outside the file)")
    tags: dict[int, tuple[float, ...]] = {}
    for i in range(count):
        at = table + i * entry_size
        tag, typ = struct.unpack_from(end + "HH", data, at)
        (n,) = struct.unpack_from(end + off_fmt, data, at + 4)
        size = _TYPE_SIZES.get(typ)
        if size is None or typ in (2, 7):  # unknown, ASCII and UNDEFINED are not needed
            continue
        total = size * n
        if total <= inline:
            where = at + 4 + struct.calcsize(off_fmt)
        else:
            (where,) = struct.unpack_from(end + off_fmt, data, at + 4 + struct.calcsize(off_fmt))
            if where + total > len(data):
                raise TiffStructureError("the TIFF is truncated (tag value outside the file)")
        if n > 1_000_000:
            raise TiffStructureError("the TIFF has an absurd tag")
        if typ in _RATIONAL:
            raw = struct.unpack_from(f"{end}{2 * n}{_RATIONAL[typ]}", data, where)
            tags[tag] = tuple(
                raw[j] / raw[j + 1] if raw[j + 1] else 0.0 for j in range(0, 2 * n, 2)
            )
        else:
            tags[tag] = struct.unpack_from(f"{end}{n}{_TYPE_FORMATS[typ]}", data, where)
    (next_offset,) = struct.unpack_from(end + off_fmt, data, next_at)
    return TiffFrame(tags), int(next_offset)
