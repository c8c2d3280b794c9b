from __future__ import annotations

import io
import zipfile
from typing import get_args

from hypothesis import given
from hypothesis import strategies as st

from faxline.documents import sniff
from faxline.documents.sniff import Kind


def test_magic_numbers_decide() -> None:
    assert sniff(b"%PDF-1.7\n...", "letter.txt") == "pdf"
    assert sniff(b"II*\x00\x08\x00\x00\x00", None) == "tiff"
    assert sniff(b"MM\x00*\x00\x00\x00\x08", "x.pdf") == "tiff"
    assert sniff(b"\xff\xd8\xff\xe0\x00\x10JFIF", "a.txt") == "jpeg"


def test_text_rules() -> None:
    assert sniff(b"", None) == "text"
    assert sniff("Grüße\tund\fmehr\r\n".encode(), None) == "text"
    latin = "Grüße aus Köln\n".encode("latin-1")
    assert sniff(latin, None) is None
    assert sniff(latin, "gruss.TXT") == "text"
    assert sniff(b"abc\x1b[0m", "ansi.txt") == "text"  # valid UTF-8: controls allowed
    assert sniff(b"abc\x00def", "nul.txt") is None
    assert sniff(b"\x93quoted\x94", "cp1252.txt") is None  # C1 controls under Latin-1


def test_images_and_office_files_by_content() -> None:
    assert sniff(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "x.pdf") == "png"
    assert sniff(b"GIF89a\x01\x00\x01\x00\x80\x00\x00", "x.jpg") == "gif"
    assert sniff(b"BM" + bytes(60), "x.txt") == "bmp"
    assert sniff(b"RIFF\x10\x00\x00\x00WEBPVP8 ", None) == "webp"
    assert sniff(b"{\\rtf1\\ansi Hello}", "x.pdf") == "rtf"
    assert sniff(b"\xef\xbb\xbf<!DOCTYPE html><p>x", "x.txt") == "html"
    assert sniff(b"<HTML><body>x", None) == "html"
    assert sniff(b"<p>a fragment is text</p>", None) == "text"


def test_zips_by_their_parts() -> None:
    assert sniff(_zip({"[Content_Types].xml": "", "word/document.xml": ""}), "a.pdf") == "docx"
    assert sniff(_zip({"[Content_Types].xml": "", "xl/workbook.xml": ""}), None) == "xlsx"
    assert sniff(_zip({"[Content_Types].xml": "", "ppt/presentation.xml": ""}), None) == "pptx"
    odt = _zip({"mimetype": "application/vnd.oasis.opendocument.text", "content.xml": ""})
    assert sniff(odt, "x.docx") == "odt"
    assert sniff(_zip({"word/document.xml": ""}), "a.docx") is None  # no content types
    assert sniff(b"PK\x03\x04\x14\x00\x00\x00", "x.docx") is None  # not a zip at all


def test_ole2_by_stream_name() -> None:
    head = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(500)
    assert sniff(head + "WordDocument".encode("utf-16-le"), "x.xls") == "doc"
    assert sniff(head + "Workbook".encode("utf-16-le"), None) == "xls"
    assert sniff(head, "x.doc") is None


def _zip(parts: dict[str, str]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, text in parts.items():
            archive.writestr(name, text)
    return out.getvalue()


@given(st.binary(max_size=2048), st.one_of(st.none(), st.text(max_size=20)))
def test_sniff_never_raises(data: bytes, filename: str | None) -> None:
    assert sniff(data, filename) in (None, *get_args(Kind))


@given(st.binary(max_size=2048), st.sampled_from([b"PK\x03\x04", b"\x89PNG\r\n\x1a\n", b"BM"]))
def test_sniff_never_raises_on_magic_prefixes(data: bytes, magic: bytes) -> None:
    assert sniff(magic + data, None) in (None, *get_args(Kind))
