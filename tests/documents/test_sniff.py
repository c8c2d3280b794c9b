from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from faxline.documents import sniff


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


def test_other_formats_are_refused() -> None:
    assert sniff(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "x.png") is None
    assert sniff(b"GIF89a\x01\x00\x01\x00\x80\x00\x00", "x.jpg") is None
    assert sniff(b"PK\x03\x04\x14\x00\x00\x00", "x.pdf") is None


@given(st.binary(max_size=2048), st.one_of(st.none(), st.text(max_size=20)))
def test_sniff_never_raises(data: bytes, filename: str | None) -> None:
    assert sniff(data, filename) in (None, "pdf", "tiff", "jpeg", "text")
