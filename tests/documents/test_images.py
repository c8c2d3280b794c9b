"""PNG, GIF, BMP and WebP uploads: one page each, through the same path as JPEG."""

from __future__ import annotations

import io

import numpy as np
import pytest
from documents_factory import photo
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from faxline.documents import ConversionLimits, DocumentError, InputFile, convert_documents
from faxline.documents.convert import identify
from faxline.documents.faxtiff import read_fax_tiff

FORMATS: dict[str, dict[str, object]] = {
    "png": {}, "gif": {}, "bmp": {}, "webp": {"lossless": True}
}  # fmt: skip


def _save(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt.upper(), **{**FORMATS.get(fmt, {}), **options})
    return out.getvalue()


def _pages(data: bytes, name: str, **kw: object) -> bytes:
    document = convert_documents([InputFile(name, data)], **kw)  # type: ignore[arg-type]
    assert document.pages == 1 and document.tiff is not None
    return document.tiff


@pytest.mark.parametrize("fmt", ["png", "bmp", "webp"])
def test_lossless_formats_give_the_same_page(fmt: str) -> None:
    """A lossless image is the same fax page whatever format carries it (here against PNG),
    and its type is found from the bytes even under a wrong name."""
    gray = photo(600, 400).convert("L")
    # BMP always records a resolution (then the image keeps its size); WebP never does.
    dpi = {"dpi": (150, 150)} if fmt != "webp" else {}
    data = _save(gray, fmt, **dpi)
    assert identify(InputFile("scan.pdf", data), 0) == ("scan.pdf", fmt)
    assert _pages(data, "scan.pdf") == _pages(_save(gray, "png", **dpi), "reference.png")


def test_gif_is_its_first_frame() -> None:
    first = Image.new("L", (300, 200), 255)
    first.paste(0, (0, 0, 150, 200))  # left half black
    second = Image.new("L", (300, 200), 0)
    out = io.BytesIO()
    first.save(out, "GIF", save_all=True, append_images=[second], duration=100)
    gif = _pages(out.getvalue(), "anim.gif")
    assert gif == _pages(_save(first, "png"), "first.png")
    assert gif != _pages(_save(second, "png"), "second.png")


def test_page_is_fitted_and_dithered() -> None:
    image = photo(3000, 2000)  # wider than the page: scaled to 1728 pixels
    (page,) = read_fax_tiff(_pages(_save(image, "png"), "wide.png"))
    assert page.shape == (round(1728 * 2000 / 3000 * 196 / 204), 1728)
    # Mid-gray content is halftoned: neither all black nor all white in the middle.
    assert 0.1 < page[400:600, 700:1000].mean() < 0.9


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_truncated_images_are_refused(fmt: str) -> None:
    data = _save(photo(400, 300), fmt)
    with pytest.raises(DocumentError, match=rf"^cut\.{fmt}: .*(corrupt|truncated)"):
        convert_documents([InputFile(f"cut.{fmt}", data[: len(data) * 2 // 3])])


def test_png_crc_damage_is_refused() -> None:
    data = bytearray(_save(photo(64, 64), "png"))
    data[40] ^= 0xFF  # inside IDAT: Pillow would decode garbage without the CRC check
    with pytest.raises(DocumentError, match=r"^bad\.png: the image is corrupt"):
        convert_documents([InputFile("bad.png", bytes(data))])


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_pixel_limit_before_decoding(fmt: str) -> None:
    data = _save(Image.new("L", (500, 500), 255), fmt)
    with pytest.raises(DocumentError, match=r"500 x 500 pixels, over the limit of 1000"):
        convert_documents([InputFile(f"big.{fmt}", data)], limits=ConversionLimits(max_pixels=1000))


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(list(FORMATS)),
    st.integers(0, 10_000),
    st.binary(min_size=1, max_size=8),
)
def test_damaged_images_fail_cleanly(fmt: str, where: int, junk: bytes) -> None:
    """Any damage gives a page or a DocumentError naming the file, never another error."""
    rng = np.random.default_rng(where)
    image = Image.fromarray(rng.integers(0, 255, (40, 60), dtype=np.uint8), "L")
    data = bytearray(_save(image, fmt))
    spot = where % len(data)
    data[spot : spot + len(junk)] = junk
    try:
        document = convert_documents([InputFile(f"x.{fmt}", bytes(data))])
    except DocumentError as exc:
        assert exc.filename == f"x.{fmt}"
    else:
        assert document.pages == 1
