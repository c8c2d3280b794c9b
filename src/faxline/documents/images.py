"""JPEG, PNG, GIF, BMP and WebP images and TIFF frames to bilevel fax pages with Pillow.

A GIF becomes one page: its first frame (an animation is not a document, and its later
frames are usually small updates of the first).

Every frame's size is checked against the pixel limit before any pixel is decoded: TIFF
frames from the directory structure (Pillow checks a later frame only when loading it),
single images from their header. Then the file must decode fully: PNG's chunk CRCs are
verified, a PNG, GIF, BMP or WebP whose data ends early fails Pillow's load (truncated
images are never accepted), and Pillow pads a JPEG whose scan data
is missing or cut short, and a CCITT strip that ends early, without a word, so every JPEG
is first decoded by TurboJPEG and every TIFF frame by the system libtiff, both of which
report such damage; the first fault makes the file invalid.
"""

from __future__ import annotations

import contextlib
import io
import struct
import warnings
from collections.abc import Iterator, Sequence

import numpy as np
import numpy.typing as npt
from PIL import Image

from faxline.documents import _libtiff, _turbojpeg
from faxline.documents.errors import DocumentError
from faxline.documents.model import FAX_WIDTH, ConversionLimits, Resolution
from faxline.documents.raster import Placement, dither, pack, place, place_fit_width
from faxline.documents.tiffstruct import TiffFrame, TiffStructureError, read_frames

_DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, struct.error, IndexError,
                  Image.DecompressionBombError)  # fmt: skip
_MIN_DPI, _MAX_DPI = 20.0, 5000.0


def tiff_frames(data: bytes, name: str, limits: ConversionLimits) -> list[TiffFrame]:
    """Read and check the directory of every frame: count and pixel limits."""
    try:
        frames = read_frames(data, max_directories=limits.max_pages + 1)
    except TiffStructureError as exc:
        reason = str(exc)
        if "more than" in reason:
            reason = f"the TIFF has more than {limits.max_pages} pages"
        raise DocumentError(name, reason) from None
    if len(frames) > limits.max_pages:
        raise DocumentError(name, f"the TIFF has more than {limits.max_pages} pages")
    for number, frame in enumerate(frames, start=1):
        _check_pixels(frame.width, frame.length, name, limits, f"page {number}")
    return frames


def _check_pixels(width: int, height: int, name: str, limits: ConversionLimits, what: str) -> None:
    if width <= 0 or height <= 0:
        raise DocumentError(name, f"{what} has no pixels")
    if width * height > limits.max_pixels:
        raise DocumentError(
            name,
            f"{what} is {width} x {height} pixels, over the limit of {limits.max_pixels} pixels",
        )


def _open(data: bytes, name: str) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(io.BytesIO(data))
    except _DECODE_ERRORS:
        raise DocumentError(name, "the image is corrupt or not supported") from None


def tiff_pages(
    data: bytes,
    name: str,
    resolution: Resolution,
    limits: ConversionLimits,
    indices: Sequence[int] | None = None,
) -> Iterator[npt.NDArray[np.uint8]]:
    """Yield the TIFF's frames (all, or ``indices``) as packed fax pages."""
    frames = tiff_frames(data, name, limits)
    wanted = range(len(frames)) if indices is None else indices
    image = _open(data, name)
    with image, contextlib.closing(_libtiff.read_frames_strictly(data, wanted)) as strict:
        for index, black in zip(wanted, _faults_named(strict, name), strict=True):
            frame = frames[index]
            what = f"page {index + 1}"
            if black is not None:
                # A CCITT frame, already decoded by libtiff: Pillow need not do it again.
                if black.shape != (frame.length, frame.width):
                    raise DocumentError(name, f"{what} is corrupt")
                dpi = _dpi(frame.resolution())
                yield _bilevel(black, _placement(frame.width, frame.length, dpi, resolution))
                continue
            try:
                image.seek(index)
            except _DECODE_ERRORS:
                raise DocumentError(name, f"{what} is corrupt") from None
            # Pillow's idea of the frame must be the one we checked.
            _check_pixels(image.width, image.height, name, limits, what)
            _load(image, name, what)
            yield _frame_page(image, frame.resolution(), resolution, name, what)


def _faults_named(
    frames: Iterator[npt.NDArray[np.bool_] | None], name: str
) -> Iterator[npt.NDArray[np.bool_] | None]:
    """libtiff's strict reading of the frames, its faults as DocumentErrors naming the page."""
    try:
        yield from frames
    except _libtiff.FrameDecodeError as exc:
        reason = exc.reason.removeprefix("faxline: ")
        raise DocumentError(
            name, f"page {exc.index + 1} is corrupt or truncated ({reason})"
        ) from None
    except _libtiff.LibtiffError as exc:
        raise DocumentError(name, f"the TIFF is corrupt ({exc})") from None


def jpeg_page(
    data: bytes, name: str, resolution: Resolution, limits: ConversionLimits
) -> npt.NDArray[np.uint8]:
    """The JPEG image as one packed fax page (scaled, dithered)."""
    image = _open(data, name)
    with image:
        if image.format != "JPEG":
            raise DocumentError(name, "the file is not a JPEG image")
        _check_pixels(image.width, image.height, name, limits, "the image")
        try:
            _turbojpeg.check_decodes(data)
        except _turbojpeg.JpegDecodeError as exc:
            raise DocumentError(name, f"the image is corrupt or truncated ({exc})") from None
        dpi = _dpi(image.info.get("dpi"))
        turn = _ORIENTATIONS.get(_orientation(image))
        swapped = turn in _SWAPPING
        if swapped:
            width, height = image.height, image.width
            dpi = (dpi[1], dpi[0]) if dpi else None
        else:
            width, height = image.size
        spot = _placement(width, height, dpi, resolution)
        # DCT scaling: decode big photos at a fraction of their size (fast, little memory).
        draft_mode = "L" if image.mode in ("L", "RGB") else image.mode
        image.draft(draft_mode, (spot.rows, spot.width) if swapped else (spot.width, spot.rows))
        _load(image, name, "the image")
        upright = image.transpose(turn) if turn is not None else image
        return _photo(_gray(upright), spot)


_ORIENTATIONS = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_SWAPPING = frozenset(
    {Image.Transpose.TRANSPOSE, Image.Transpose.ROTATE_270, Image.Transpose.TRANSVERSE,
     Image.Transpose.ROTATE_90}
)  # fmt: skip


_PILLOW_FORMATS = {"png": "PNG", "gif": "GIF", "bmp": "BMP", "webp": "WEBP"}


def image_page(
    data: bytes, name: str, kind: str, resolution: Resolution, limits: ConversionLimits
) -> npt.NDArray[np.uint8]:
    """A PNG, GIF (first frame), BMP or WebP image as one packed fax page."""
    expected = _PILLOW_FORMATS[kind]
    image = _open(data, name)
    with image:
        if image.format != expected:
            raise DocumentError(name, f"the file is not a {expected} image")
        _check_pixels(image.width, image.height, name, limits, "the image")
        if kind == "png":
            _verify_png(data, name)
        _load(image, name, "the image")
        dpi = _dpi(image.info.get("dpi"))
        turn = _ORIENTATIONS.get(_orientation(image))
        upright = image.transpose(turn) if turn is not None else image
        if turn in _SWAPPING and dpi is not None:
            dpi = (dpi[1], dpi[0])
        spot = _placement(upright.width, upright.height, dpi, resolution)
        if upright.mode == "1":
            return _bilevel(~np.asarray(upright, dtype=np.bool_), spot)
        return _photo(_gray(upright), spot)


def _verify_png(data: bytes, name: str) -> None:
    # verify() walks every chunk and checks its CRC without decoding pixels; it needs an
    # image of its own (a verified image cannot be loaded).
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as probe:
                probe.verify()
    except _DECODE_ERRORS:
        raise DocumentError(name, "the image is corrupt or truncated") from None


def _orientation(image: Image.Image) -> int:
    """The EXIF orientation (1 = upright); a damaged EXIF block counts as upright."""
    try:
        value = image.getexif().get(0x0112, 1)
    except Exception:  # EXIF is optional metadata: never a reason to refuse the photo
        return 1
    return value if isinstance(value, int) else 1


def _load(image: Image.Image, name: str, what: str) -> None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image.load()
    except MemoryError:
        raise
    except OSError as exc:
        # Pillow reports a failed allocation inside a decoder as code -9 ("out of memory").
        if "error -9" in str(exc) or "memory" in str(exc):
            raise MemoryError(str(exc)) from exc
        raise DocumentError(name, f"{what} is corrupt or truncated") from None
    except _DECODE_ERRORS:
        raise DocumentError(name, f"{what} is corrupt or truncated") from None


def _dpi(value: object) -> tuple[float, float] | None:
    if isinstance(value, tuple) and len(value) == 2:
        try:
            x, y = float(value[0]), float(value[1])
        except (TypeError, ValueError):
            return None
        if _MIN_DPI <= x <= _MAX_DPI and _MIN_DPI <= y <= _MAX_DPI:
            return x, y
    return None


def _placement(
    width: int, height: int, dpi: tuple[float, float] | None, resolution: Resolution
) -> Placement:
    if dpi is None:
        return place_fit_width(width, height, resolution)
    return place(width / dpi[0], height / dpi[1], resolution)


def _frame_page(
    image: Image.Image,
    dpi: tuple[float, float] | None,
    resolution: Resolution,
    name: str,
    what: str,
) -> npt.NDArray[np.uint8]:
    dpi = _dpi(dpi)
    spot = _placement(image.width, image.height, dpi, resolution)
    if image.mode == "1":
        return _bilevel(~np.asarray(image, dtype=np.bool_), spot)
    return _photo(_gray(image), spot)


def _bilevel(black: npt.NDArray[np.bool_], spot: Placement) -> npt.NDArray[np.uint8]:
    """Keep a bilevel frame bilevel: copy or repeat rows when only the length changes."""
    if black.shape[1] == FAX_WIDTH and spot.width == FAX_WIDTH:
        if black.shape[0] != spot.rows:
            rows = (np.arange(spot.rows) * black.shape[0]) // spot.rows
            black = black[rows]
        return pack(black)
    image = Image.fromarray(np.where(black, 0, 255).astype(np.uint8), "L")
    gray = np.asarray(image.resize((spot.width, spot.rows), Image.Resampling.BOX), dtype=np.uint8)
    page = np.zeros((spot.rows, FAX_WIDTH), dtype=np.bool_)
    page[:, spot.left : spot.left + spot.width] = gray < 128
    return pack(page)


def _gray(image: Image.Image) -> Image.Image:
    """The image as 8-bit gray on white, whatever its mode and depth."""
    mode = image.mode
    if mode.startswith("I") or mode == "F":
        values = np.asarray(image).astype(np.float64)
        top = float(values.max()) if values.size else 0.0
        low = float(values.min()) if values.size else 0.0
        if mode.startswith("I;16") or (low >= 0 and top <= 65535 and top > 255):
            scale = 255.0 / 65535.0 if top > 255 else 1.0
        elif mode == "F" and low >= 0 and top <= 1.0:
            scale = 255.0
        else:
            scale = 255.0 / top if top > 255 else 1.0
        return Image.fromarray(np.clip(values * scale, 0, 255).astype(np.uint8), "L")
    if mode in ("LA", "La", "PA", "RGBA", "RGBa") or (mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("L")
    if mode == "L":
        return image
    return image.convert("L")


def _photo(gray_image: Image.Image, spot: Placement) -> npt.NDArray[np.uint8]:
    if gray_image.size != (spot.width, spot.rows):
        gray_image = gray_image.resize(
            (spot.width, spot.rows), Image.Resampling.LANCZOS, reducing_gap=3.0
        )
    gray = np.full((spot.rows, FAX_WIDTH), 255, dtype=np.uint8)
    gray[:, spot.left : spot.left + spot.width] = np.asarray(gray_image, dtype=np.uint8)
    return pack(dither(gray))
