"""Builders of real documents for the conversion tests (generated, never checked in)."""

from __future__ import annotations

import io
import random
import struct
from collections.abc import Sequence

import numpy as np
from PIL import Image

WORDS = [
    "lorem",
    "ipsum",
    "dolor",
    "sit",
    "amet",
    "consectetur",
    "adipiscing",
    "elit",
    "sed",
    "do",
    "eiusmod",
    "tempor",
]


def text_pdf(
    pages: int = 2, size: tuple[float, float] = (595.2756, 841.8898), **kw: object
) -> bytes:
    from reportlab.pdfgen import canvas

    out = io.BytesIO()
    pdf = canvas.Canvas(out, pagesize=size, **kw)
    rnd = random.Random(1)
    for _ in range(pages):
        pdf.setFont("Helvetica", 10)
        y = size[1] - 50
        while y > 50:
            pdf.drawString(50, y, " ".join(rnd.choice(WORDS) for _ in range(12)))
            y -= 12
        pdf.showPage()
    pdf.save()
    return out.getvalue()


def photo(width: int = 800, height: int = 600) -> Image.Image:
    y, x = np.mgrid[0:height, 0:width]
    gray = (np.sin(x / 40) + np.cos(y / 55)) * 60 + 128
    rgb = np.stack([gray, np.roll(gray, 30, axis=1), 255 - gray], axis=-1)
    return Image.fromarray(rgb.clip(0, 255).astype(np.uint8), "RGB")


def image_pdf(pages: int = 2, size: tuple[float, float] = (612.0, 792.0)) -> bytes:
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas

    out = io.BytesIO()
    pdf = canvas.Canvas(out, pagesize=size)
    picture = ImageReader(photo())
    for _ in range(pages):
        pdf.drawImage(picture, 36, 200, width=size[0] - 72, height=size[1] - 300)
        pdf.setFont("Helvetica", 14)
        pdf.drawString(36, 100, "A caption under the photo")
        pdf.showPage()
    pdf.save()
    return out.getvalue()


def jpeg(mode: str = "RGB", **save: object) -> bytes:
    out = io.BytesIO()
    photo().convert(mode).save(out, "JPEG", **save)
    return out.getvalue()


def tiff(frames: Sequence[Image.Image], **save: object) -> bytes:
    out = io.BytesIO()
    frames[0].save(out, "TIFF", save_all=True, append_images=list(frames[1:]), **save)
    return out.getvalue()


def raw_tiff(
    frames: Sequence[tuple[int, int, int, bytes]], declared: Sequence[int | None] = ()
) -> bytes:
    """A little-endian TIFF of bilevel frames (width, length, compression, strip data);
    ``declared[i]``, when given, is the strip byte count that frame i claims instead."""
    out = bytearray(b"II*\x00\x00\x00\x00\x00")
    link = 4
    for number, (width, length, compression, data) in enumerate(frames):
        count = declared[number] if number < len(declared) else None
        at = len(out)
        out += data + (b"\x00" if len(data) % 2 else b"")
        ifd = len(out)
        entries = [
            (256, 4, width), (257, 4, length), (258, 3, 1), (259, 3, compression),
            (262, 3, 0), (273, 4, at), (277, 3, 1), (278, 4, length),
            (279, 4, len(data) if count is None else count),
        ]  # fmt: skip
        table = struct.pack("<H", len(entries))
        for tag, typ, value in entries:
            table += struct.pack("<HHI", tag, typ, 1)
            table += struct.pack("<HH", value, 0) if typ == 3 else struct.pack("<I", value)
        struct.pack_into("<I", out, link, ifd)
        link = ifd + len(table)
        out += table + b"\x00\x00\x00\x00"
    return bytes(out)


def g4_white(width: int, rows: int) -> bytes:
    """G4 data of an all-white page: one V0 code (a single 1 bit) per row, then EOFB."""
    return b"\xff" * (rows // 8) + b"\x00\x10\x01"


def jpeg_without_scan_data(width: int = 8000, height: int = 8000) -> bytes:
    """A JPEG whose header declares ``width`` x ``height`` and whose scan holds no data."""
    out = io.BytesIO()
    Image.new("L", (64, 64), 200).save(out, "JPEG", quality=10)
    data = bytearray(out.getvalue())
    sof = data.find(b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, height, width)
    sos = data.find(b"\xff\xda")
    (header,) = struct.unpack_from(">H", data, sos + 2)
    return bytes(data[: sos + 2 + header]) + b"\xff\xd9"


def g4_strip(image: Image.Image) -> bytes:
    """The G4-coded strip of a bilevel image, as Pillow (libtiff) codes it."""
    out = io.BytesIO()
    image.convert("1").save(out, "TIFF", compression="group4")
    data = out.getvalue()
    from faxline.documents.tiffstruct import read_frames

    frame = read_frames(data)[0]
    offset, count = int(frame.tags[273][0]), int(frame.tags[279][0])
    return data[offset : offset + count]


def halve_strips(data: bytes) -> bytes:
    """The little-endian TIFF ``data`` with every strip of its first frame cut to half its
    bytes (the byte counts say so; the file keeps its length)."""
    out = bytearray(data)
    (ifd,) = struct.unpack_from("<I", out, 4)
    (entries,) = struct.unpack_from("<H", out, ifd)
    for i in range(entries):
        at = ifd + 2 + 12 * i
        tag, typ, count = struct.unpack_from("<HHI", out, at)
        if tag != 279:
            continue
        fmt, size = ("<I", 4) if typ == 4 else ("<H", 2)
        where = at + 8 if count * size <= 4 else struct.unpack_from("<I", out, at + 8)[0]
        for k in range(count):
            (value,) = struct.unpack_from(fmt, out, where + k * size)
            struct.pack_into(fmt, out, where + k * size, value // 2)
    return bytes(out)
