from __future__ import annotations

import io
import subprocess
from pathlib import Path

import numpy as np
import pytest
from documents_factory import g4_white, image_pdf, jpeg, photo, raw_tiff, text_pdf, tiff
from PIL import Image

from faxline.documents import (
    ConversionLimits,
    DocumentError,
    InputFile,
    Resolution,
    convert_documents,
)
from faxline.documents.faxtiff import check_fax_tiff, read_fax_tiff

A4 = (595.2756, 841.8898)
LETTER = (612.0, 792.0)


def _convert(tmp_path: Path, *files: InputFile, **kw: object) -> list[np.ndarray]:
    document = convert_documents(files, **kw)  # type: ignore[arg-type]
    assert document.tiff is not None
    path = tmp_path / "out.tif"
    path.write_bytes(document.tiff)
    info = check_fax_tiff(path)
    assert info.pages == document.pages
    result = subprocess.run(["tiffinfo", "-D", str(path)], capture_output=True, text=True)
    assert result.returncode == 0 and "rror" not in result.stderr
    pages = read_fax_tiff(path)
    assert all(page.shape[1] == 1728 for page in pages)
    return pages


def test_a4_text_pdf_fine_and_standard(tmp_path: Path, a4_text_pdf: bytes) -> None:
    fine = _convert(tmp_path, InputFile("a4.pdf", a4_text_pdf))
    assert [p.shape[0] for p in fine] == [2292] * 3
    standard = _convert(tmp_path, InputFile("a4.pdf", a4_text_pdf), resolution=Resolution.STANDARD)
    assert [p.shape[0] for p in standard] == [1146] * 3
    assert 0.01 < fine[0].mean() < 0.2  # text, not a black or empty page


def test_letter_image_pdf_is_dithered(tmp_path: Path, letter_image_pdf: bytes) -> None:
    pages = _convert(tmp_path, InputFile("letter.pdf", letter_image_pdf))
    assert len(pages) == 2
    assert 2140 <= pages[0].shape[0] <= 2160  # 11 in, scaled to fit 1728 columns
    middle = pages[0][800:1200, 400:1300]
    assert 0.2 < middle.mean() < 0.8  # halftone dots, not a thresholded blob
    document = convert_documents([InputFile("letter.pdf", letter_image_pdf)])
    assert document.tiff is not None and len(document.tiff) < 2 * 250_000


def test_rotated_page_is_fitted_to_the_width(tmp_path: Path) -> None:
    import pypdfium2

    doc = pypdfium2.PdfDocument(text_pdf(1))
    doc[0].set_rotation(90)
    out = io.BytesIO()
    doc.save(out)
    (page,) = _convert(tmp_path, InputFile("landscape.pdf", out.getvalue()))
    assert page.shape == (round(595.2756 / 841.8898 * 1728 * 196 / 204), 1728)


def test_letter_text_pdf(tmp_path: Path) -> None:
    pages = _convert(tmp_path, InputFile("letter.pdf", text_pdf(1, LETTER)))
    assert 2140 <= pages[0].shape[0] <= 2160


@pytest.mark.parametrize("mode", ["RGB", "L", "CMYK"])
def test_jpeg(tmp_path: Path, mode: str) -> None:
    (page,) = _convert(tmp_path, InputFile("photo.jpg", jpeg(mode)))
    assert page.shape == (round(1728 * 600 / 800 * 196 / 204), 1728)  # fit to width
    assert 0.2 < page.mean() < 0.8


def test_jpeg_with_dpi_keeps_its_size(tmp_path: Path) -> None:
    (page,) = _convert(tmp_path, InputFile(None, jpeg("RGB", dpi=(100, 100))))
    assert page.shape[0] == 1176  # 6 inches at 196 lines per inch
    assert not page[:, :40].any() and page[:, 60:1660].any()  # 1632 wide, centred


def test_jpeg_exif_orientation_is_applied(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: turn 90 degrees clockwise to view
    (page,) = _convert(tmp_path, InputFile("phone.jpg", jpeg("L", exif=exif.tobytes())))
    assert page.shape[0] > 2000  # portrait now (600 x 800), not 1245 rows of landscape


def test_multipage_tiffs(tmp_path: Path) -> None:
    picture = photo()
    frames = [picture, picture.convert("P"), picture.convert("L")]
    lzw = tiff(frames, compression="tiff_lzw", dpi=(200, 200))
    pages = _convert(tmp_path, InputFile("scan.tif", lzw))
    assert len(pages) == 3
    assert pages[0].shape == (588, 1728)
    bilevel = [picture.convert("1"), picture.convert("L").point(lambda v: 255 - v).convert("1")]
    for compression in ("group3", "group4"):
        data = tiff(bilevel, compression=compression, dpi=(204, 196))
        assert len(_convert(tmp_path, InputFile("fax.tiff", data))) == 2


def test_tiled_tiff(tmp_path: Path) -> None:
    striped = tmp_path / "striped.tif"
    striped.write_bytes(tiff([photo(), photo()], compression="tiff_lzw"))
    tiled = tmp_path / "tiled.tif"
    subprocess.run(["tiffcp", "-t", "-c", "zip", str(striped), str(tiled)], check=True)
    pages = _convert(tmp_path, InputFile("tiled.tif", tiled.read_bytes()))
    assert len(pages) == 2


def test_text_next_to_a_photo_stays_crisp() -> None:
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas

    def page(with_photo: bool) -> np.ndarray:
        out = io.BytesIO()
        pdf = canvas.Canvas(out, pagesize=LETTER)
        if with_photo:
            pdf.drawImage(ImageReader(photo()), 36, 200, width=540, height=492)
        pdf.setFont("Helvetica", 14)
        pdf.drawString(36, 100, "A caption under the photo")
        pdf.save()
        document = convert_documents([InputFile("p.pdf", out.getvalue())])
        assert document.tiff is not None
        return read_fax_tiff(document.tiff)[0]

    mixed, text_only = page(True), page(False)
    caption = slice(1800, 1950)
    assert text_only[caption].any()
    assert np.array_equal(mixed[caption], text_only[caption])  # thresholded, not dithered
    assert 0.2 < mixed[600:1200, 400:1300].mean() < 0.8  # while the photo is dithered


def test_16_bit_gray_tiff(tmp_path: Path) -> None:
    ramp = (np.arange(600 * 800, dtype=np.uint32).reshape(600, 800) % 65536).astype(np.uint16)
    out = io.BytesIO()
    Image.fromarray(ramp).save(out, "TIFF")
    (page,) = _convert(tmp_path, InputFile("deep.tif", out.getvalue()))
    assert 0.2 < page.mean() < 0.8


def test_fax_tiff_input_is_kept_exactly(tmp_path: Path, a4_text_pdf: bytes) -> None:
    document = convert_documents([InputFile("a4.pdf", a4_text_pdf)])
    assert document.tiff is not None
    again = convert_documents([InputFile("a4.tif", document.tiff)])
    assert again.tiff is not None
    before, after = read_fax_tiff(document.tiff), read_fax_tiff(again.tiff)
    assert all(np.array_equal(a, b) for a, b in zip(before, after, strict=True))
    standard = convert_documents(
        [InputFile("a4.tif", document.tiff)], resolution=Resolution.STANDARD
    )
    assert standard.tiff is not None
    assert read_fax_tiff(standard.tiff)[0].shape == (1146, 1728)


def test_several_files_in_order(tmp_path: Path, a4_text_pdf: bytes) -> None:
    pages = _convert(
        tmp_path,
        InputFile("cover.txt", b"To: Bob\n"),
        InputFile("a4.pdf", a4_text_pdf),
        InputFile(None, jpeg()),
        InputFile("blank.txt", b"\n\n"),
    )
    assert len(pages) == 5
    assert pages[4].shape[0] != 2292  # the photo comes last


def test_text_without_content_has_no_pages() -> None:
    document = convert_documents([InputFile("a.txt", b" \n\f"), InputFile(None, b"")])
    assert document.pages == 0 and document.tiff is None


def _fails(files: list[InputFile], match: str, **kw: object) -> None:
    with pytest.raises(DocumentError, match=match):
        convert_documents(files, **kw)  # type: ignore[arg-type]


def test_hostile_files(a4_text_pdf: bytes) -> None:
    rng = np.random.default_rng(3)
    _fails([InputFile("noise.bin", rng.bytes(4096))], r"^noise\.bin: the file is not a document")
    png = io.BytesIO()
    photo().save(png, "PNG")
    cut_png = png.getvalue()[: len(png.getvalue()) // 2]
    _fails([InputFile("ok.txt", b"hi"), InputFile(None, cut_png)], r"^file 2: .*truncated")
    _fails([InputFile("cut.pdf", a4_text_pdf[: len(a4_text_pdf) // 2])], r"^cut\.pdf: the PDF is")
    data = jpeg()
    _fails([InputFile("cut.jpg", data[: len(data) // 2])], r"^cut\.jpg: .*(corrupt|truncated)")
    _fails([InputFile("cut.tif", tiff([photo()])[:5000])], r"^cut\.tif: ")
    _fails([InputFile("junk.jpg", b"\xff\xd8\xff" + rng.bytes(2000))], r"^junk\.jpg: ")
    _fails([InputFile("junk.tif", b"II*\x00" + rng.bytes(2000))], r"^junk\.tif: ")


def test_encrypted_pdf() -> None:
    _fails(
        [InputFile("report.pdf", text_pdf(1, encrypt="pw"))], r"^report\.pdf: the PDF is encrypted$"
    )


def test_pdf_without_pages() -> None:
    from reportlab.pdfgen import canvas

    out = io.BytesIO()
    canvas.Canvas(out).save()  # reportlab adds a blank page; remove it by hand is hard,
    data = out.getvalue().replace(b"/Count 1", b"/Count 0").replace(b"/Kids [", b"/Kids [] %")
    with pytest.raises(DocumentError, match=r"^empty\.pdf: "):
        convert_documents([InputFile("empty.pdf", data)])


def test_tiff_bombs_are_refused_before_decoding() -> None:
    bomb = raw_tiff([(40000, 40000, 4, g4_white(40000, 40000))])
    assert len(bomb) < 10_000
    _fails([InputFile("bomb.tif", bomb)], r"^bomb\.tif: page 1 is 40000 x 40000 pixels, over")
    second = raw_tiff(
        [(1728, 100, 4, g4_white(1728, 100)), (40000, 40000, 4, g4_white(40000, 40000))]
    )
    _fails([InputFile("two.tif", second)], r"^two\.tif: page 2 is 40000 x 40000 pixels")


def test_jpeg_over_pixel_limit() -> None:
    _fails(
        [InputFile("big.jpg", jpeg())],
        r"^big\.jpg: the image is 800 x 600 pixels, over",
        limits=ConversionLimits(max_pixels=100_000),
    )


def test_pdf_image_over_pixel_limit() -> None:
    _fails(
        [InputFile("photo.pdf", image_pdf(1))],
        r"^photo\.pdf: page 1 holds an image of 800 x 600 pixels, over the limit",
        limits=ConversionLimits(max_pixels=100_000),
    )


def test_huge_pdf_page_is_fitted(tmp_path: Path) -> None:
    (page,) = _convert(tmp_path, InputFile("poster.pdf", text_pdf(1, (14400.0, 14400.0))))
    assert page.shape == (round(1728 * 196 / 204), 1728)


def test_page_limits(a4_text_pdf: bytes) -> None:
    limits = ConversionLimits(max_pages=4)
    _fails(
        [InputFile("long.pdf", text_pdf(5))],
        r"^long\.pdf: the document has more than 4 pages",
        limits=limits,
    )
    _fails(
        [InputFile("a.pdf", a4_text_pdf), InputFile("b.pdf", a4_text_pdf)],
        r"^b\.pdf: the fax would have more than 4 pages",
        limits=limits,
    )
    _fails(
        [InputFile("long.txt", b"x\f" * 5)],
        r"^long\.txt: the document has more than 4 pages",
        limits=limits,
    )
    frames = [photo(40, 30)] * 5
    _fails(
        [InputFile("long.tif", tiff(frames))],
        r"^long\.tif: the TIFF has more than 4 pages",
        limits=limits,
    )
