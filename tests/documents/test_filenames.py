"""Filenames cleaned to printable text of at most 255 characters, never empty."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from faxline.documents.filenames import MAX_LENGTH, clean_filename, content_disposition


@given(st.text(max_size=600), st.integers(0, 100))
def test_any_text_becomes_a_printable_short_name(name: str, index: int) -> None:
    cleaned = clean_filename(name, index)
    assert cleaned and len(cleaned) <= MAX_LENGTH
    assert cleaned.isprintable()
    assert "/" not in cleaned and "\\" not in cleaned
    assert cleaned == cleaned.strip()
    cleaned.encode("utf-8")  # no lone surrogates: storable in PostgreSQL
    assert clean_filename(cleaned, index) == cleaned  # cleaning again changes nothing


@given(st.text(st.characters(categories=["L", "N"]), min_size=1, max_size=600),
       st.sampled_from(["pdf", "tiff", "txt", "jpeg"]))  # fmt: skip
def test_truncation_keeps_the_extension(stem: str, extension: str) -> None:
    cleaned = clean_filename(f"{stem}.{extension}", 0)
    assert cleaned.endswith("." + extension)
    assert len(cleaned) == min(MAX_LENGTH, len(stem) + 1 + len(extension))


@pytest.mark.parametrize(
    ("given", "cleaned"),
    [
        ("fax\x00.txt", "fax.txt"),
        ("two\nlines.pdf", "two lines.pdf"),
        ("C:\\Users\\me\\fax.pdf", "fax.pdf"),
        ("/etc/../", "document-3"),
        ("\x00\x01\x1b", "document-3"),
        ("..", "document-3"),
        ("bidi\u202etxt.exe", "biditxt.exe"),
        ("", "document-3"),
        (None, "document-3"),
    ],
)
def test_cases(given: str | None, cleaned: str) -> None:
    assert clean_filename(given, 2) == cleaned


def test_content_disposition_has_ascii_and_utf8_names() -> None:
    assert content_disposition("fax-1.pdf") == 'attachment; filename="fax-1.pdf"'
    value = content_disposition('Fäx "1"\n.pdf')
    assert value == (
        "attachment; filename=\"F_x _1_ .pdf\"; filename*=UTF-8''F%C3%A4x%20%221%22%20.pdf"
    )
